"""Small dense products for the hot loops, blocked over rows.

Independent accumulators (eight dot products per pass in ``add_mat_vec``) or four rows folded into
one pass over the output (``add_vec_mat``) let LLVM keep the vector units busy; at hidden 32 this
is about twice as fast as the plain loop. The weight gradient over a window (``mat_tn``) folds
eight time steps into each pass over the output; at these sizes that is faster than BLAS, whose
packing of the operands is half its time.

The products and copies here are ``disjoint`` kernels (see ``_jit``): what they write must not
overlap what they read.
"""

from ._jit import disjoint, kernel, strict


@disjoint
def add_vec_mat(v, w, out):
    """``out += v @ w`` for ``w`` of shape (n, m), skipping zero entries of ``v``."""
    n = w.shape[0]
    m = w.shape[1]
    i = 0
    while i + 4 <= n:
        a0 = v[i]
        a1 = v[i + 1]
        a2 = v[i + 2]
        a3 = v[i + 3]
        if a0 != 0 or a1 != 0 or a2 != 0 or a3 != 0:
            r0 = w[i]
            r1 = w[i + 1]
            r2 = w[i + 2]
            r3 = w[i + 3]
            for g in range(m):
                out[g] += a0 * r0[g] + a1 * r1[g] + a2 * r2[g] + a3 * r3[g]
        i += 4
    while i < n:
        a0 = v[i]
        if a0 != 0:  # one-hot inputs are mostly zero
            r0 = w[i]
            for g in range(m):
                out[g] += a0 * r0[g]
        i += 1


@disjoint
def add_mat_vec(w, v, out):
    """``out += w @ v`` for ``w`` of shape (n, m).

    Eight rows per pass over ``v``: each load of ``v`` feeds eight dot products, and eight
    independent sums hide the latency of the multiply-adds. (Callers that want ``out = w @ v`` zero
    ``out`` in a loop of their own: a flag choosing between the two cost more than the zeroing.)"""
    n = w.shape[0]
    m = w.shape[1]
    zero = w.dtype.type(0.0)  # a float64 literal would promote float32 sums and halve the lanes
    j = 0
    while j + 8 <= n:
        r0 = w[j]
        r1 = w[j + 1]
        r2 = w[j + 2]
        r3 = w[j + 3]
        r4 = w[j + 4]
        r5 = w[j + 5]
        r6 = w[j + 6]
        r7 = w[j + 7]
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        s4 = zero
        s5 = zero
        s6 = zero
        s7 = zero
        for g in range(m):
            d = v[g]
            s0 += r0[g] * d
            s1 += r1[g] * d
            s2 += r2[g] * d
            s3 += r3[g] * d
            s4 += r4[g] * d
            s5 += r5[g] * d
            s6 += r6[g] * d
            s7 += r7[g] * d
        out[j] += s0
        out[j + 1] += s1
        out[j + 2] += s2
        out[j + 3] += s3
        out[j + 4] += s4
        out[j + 5] += s5
        out[j + 6] += s6
        out[j + 7] += s7
        j += 8
    while j < n:
        r0 = w[j]
        s0 = zero
        for g in range(m):
            s0 += r0[g] * v[g]
        out[j] += s0
        j += 1


@disjoint
def mat_tn(a, b, out):
    """``out = a.T @ b`` for ``a`` of shape (W, n) and ``b`` of shape (W, m): the sum over the W
    rows (time steps) of the outer products ``a[t] x b[t]``.

    Eight rows of ``a`` and ``b`` per pass over ``out`` (then four, then one): each row of the
    output is loaded and stored once per eight steps, and the eight products of a column are
    independent. Faster than ``np.dot`` (OpenBLAS) at the sizes of a window (docs/design.md).
    """
    W = a.shape[0]
    n = a.shape[1]
    m = b.shape[1]
    t = 0
    if W < 8:
        out[:] = 0.0
    while t + 8 <= W:
        b0 = b[t]
        b1 = b[t + 1]
        b2 = b[t + 2]
        b3 = b[t + 3]
        b4 = b[t + 4]
        b5 = b[t + 5]
        b6 = b[t + 6]
        b7 = b[t + 7]
        for i in range(n):
            a0 = a[t, i]
            a1 = a[t + 1, i]
            a2 = a[t + 2, i]
            a3 = a[t + 3, i]
            a4 = a[t + 4, i]
            a5 = a[t + 5, i]
            a6 = a[t + 6, i]
            a7 = a[t + 7, i]
            o = out[i]
            if t == 0:  # the first pass writes, so out needs no zeroing
                for g in range(m):
                    o[g] = (a0 * b0[g] + a1 * b1[g] + a2 * b2[g] + a3 * b3[g]) + (
                        a4 * b4[g] + a5 * b5[g] + a6 * b6[g] + a7 * b7[g])
            else:
                for g in range(m):
                    o[g] += (a0 * b0[g] + a1 * b1[g] + a2 * b2[g] + a3 * b3[g]) + (
                        a4 * b4[g] + a5 * b5[g] + a6 * b6[g] + a7 * b7[g])
        t += 8
    if t + 4 <= W:
        b0 = b[t]
        b1 = b[t + 1]
        b2 = b[t + 2]
        b3 = b[t + 3]
        for i in range(n):
            a0 = a[t, i]
            a1 = a[t + 1, i]
            a2 = a[t + 2, i]
            a3 = a[t + 3, i]
            o = out[i]
            for g in range(m):
                o[g] += a0 * b0[g] + a1 * b1[g] + a2 * b2[g] + a3 * b3[g]
        t += 4
    while t < W:
        b0 = b[t]
        for i in range(n):
            a0 = a[t, i]
            o = out[i]
            for g in range(m):
                o[g] += a0 * b0[g]
        t += 1


@disjoint
def column_sums(a, out):
    """``out = a.sum(axis=0)``, summed in row order (the bias gradient over a window)."""
    for g in range(out.shape[0]):
        out[g] = 0.0
    for t in range(a.shape[0]):
        row = a[t]
        for g in range(out.shape[0]):
            out[g] += row[g]


@disjoint
def concat_columns(a, b, out):
    """``out = [a | b]`` row by row, for ``a`` (W, n) and ``b`` (W, m)."""
    n = a.shape[1]
    for t in range(a.shape[0]):
        for i in range(n):
            out[t, i] = a[t, i]
        for j in range(b.shape[1]):
            out[t, n + j] = b[t, j]


@kernel
def exp(x):
    """``exp(x)`` for |x| <= 40 (clamped beyond), relative error below 1e-13.

    Numba's ``np.exp`` is a scalar libm call that stops the loop around it from vectorising (no
    SVML here). This is ``exp(x / 256) ** 256``: a degree-10 Taylor polynomial on [-0.16, 0.16],
    then eight squarings; only multiplies and adds, so whole gate loops vectorise.
    """
    x = min(max(x, -40.0), 40.0)
    r = x * (1.0 / 256.0)
    p = 1.0 + r * (1.0 + r * (1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (
        1.0 / 720.0 + r * (1.0 / 5040.0 + r * (1.0 / 40320.0 + r * (1.0 / 362880.0 + r * (1.0 / 3628800.0))))))))))
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p


@kernel
def sigmoid(x):
    return 1.0 / (1.0 + exp(-x))


@kernel
def tanh(x):
    return 2.0 / (1.0 + exp(-2.0 * x)) - 1.0


@strict
def tanh_exact(x):
    """``tanh(x)`` like :func:`tanh`, in strict arithmetic: the same bits in every context.

    The LSTM stores ``tanh(c)`` and ``h`` in its window; a pickle leaves them out and the unpickled
    model recomputes them from ``c`` and the output gate, which is exact only if this function
    gives the bits the forward step got.
    """
    x = min(max(x, -20.0), 20.0)
    r = x * (-2.0 / 256.0)
    p = 1.0 + r * (1.0 + r * (1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (
        1.0 / 720.0 + r * (1.0 / 5040.0 + r * (1.0 / 40320.0 + r * (1.0 / 362880.0 + r * (1.0 / 3628800.0))))))))))
    for _ in range(8):  # exp(-2x) = (exp(-2x / 256)) ** 256
        p = p * p
    return 2.0 / (1.0 + p) - 1.0
