"""GRU cell (reset and update gates): forward step and backward pass through a stored window.

The PyTorch form, gates laid out as ``[r | z | n]`` (3 * hidden)::

    r = sigmoid(b_r + x @ wx_r + h_prev @ wh_r)
    z = sigmoid(b_z + x @ wx_z + h_prev @ wh_z)
    hn = bh + h_prev @ wh_n                      # stored as ``aux``
    n = tanh(b_n + x @ wx_n + r * hn)
    h = (1 - z) * n + z * h_prev

Because the reset gate multiplies the recurrent part of ``n``, the gradient reaching the recurrent
weights (``dah``) differs from the one reaching the input weights (``dax``) in the ``n`` block.
"""

from ._jit import kernel
from .linalg import add_mat_vec, add_vec_mat, sigmoid, tanh


@kernel
def forward_step(wx, wh, b, bh, x, h_prev, h, act, aux):
    """One step. Writes ``h``, the activations ``act`` = [r, z, n] and ``aux`` = hn."""
    H = h.shape[0]
    for g in range(3 * H):
        act[g] = b[g]
    for j in range(H):
        aux[j] = bh[j]
    add_vec_mat(x, wx, act)
    # r and z take h_prev @ wh directly; the n block goes to aux, which the reset gate scales
    add_vec_mat(h_prev, wh[:, : 2 * H], act[: 2 * H])
    add_vec_mat(h_prev, wh[:, 2 * H :], aux)
    for j in range(H):
        r = sigmoid(act[j])
        z = sigmoid(act[H + j])
        n = tanh(act[2 * H + j] + r * aux[j])
        act[j] = r
        act[H + j] = z
        act[2 * H + j] = n
        h[j] = (1.0 - z) * n + z * h_prev[j]


@kernel
def backward_window(wh, h_prev, act, aux, dh_in, dax, dah, carry):
    """Backward through the stored window, newest first.

    Writes dL/d(pre-activation) for the input weights into ``dax[t]`` ([r, z, n]) and for the
    recurrent weights into ``dah[t]`` ([r, z, hn]). ``carry`` (2, H) is scratch.
    """
    W = act.shape[0]
    H = carry.shape[1]
    one = act.dtype.type(1.0)  # typed, so that float32 windows stay float32
    dh_next = carry[0]
    for j in range(H):
        dh_next[j] = 0
    for t in range(W - 1, -1, -1):
        a = act[t]
        dx = dax[t]
        dr = dah[t]
        for j in range(H):
            r = a[j]
            z = a[H + j]
            n = a[2 * H + j]
            dh = dh_in[t, j] + dh_next[j]
            dan = dh * (one - z) * (one - n * n)
            dar = dan * aux[t, j] * r * (one - r)
            daz = dh * (h_prev[t, j] - n) * z * (one - z)
            dx[j] = dar
            dx[H + j] = daz
            dx[2 * H + j] = dan
            dr[j] = dar
            dr[H + j] = daz
            dr[2 * H + j] = dan * r
            # the direct path h = ... + z * h_prev, added to the matrix path below
            dh_next[j] = dh * z
        add_mat_vec(wh, dr, dh_next)
