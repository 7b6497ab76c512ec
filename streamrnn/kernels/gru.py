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

from ._jit import disjoint, kernel
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
    _gates(act[:H], act[H : 2 * H], act[2 * H :], aux, h_prev, h)


@disjoint
def _gates(a_r, a_z, a_n, hn, h_prev, h):
    """The gates of one step from their pre-activations (in place), then ``h``. One array per
    gate: see :data:`._jit.disjoint`."""
    for j in range(h.shape[0]):
        r = sigmoid(a_r[j])
        z = sigmoid(a_z[j])
        n = tanh(a_n[j] + r * hn[j])
        a_r[j] = r
        a_z[j] = z
        a_n[j] = n
        h[j] = (1.0 - z) * n + z * h_prev[j]


@kernel
def backward_window(wh, h_prev, act, aux, dh_in, dax, dah, carry):
    """Backward through the stored window, newest first.

    Writes dL/d(pre-activation) for the input weights into ``dax[t]`` ([r, z, n]) and for the
    recurrent weights into ``dah[t]`` ([r, z, hn]). ``carry`` (2, H) is scratch.
    """
    W = act.shape[0]
    H = carry.shape[1]
    dh_next = carry[0]
    for j in range(H):
        dh_next[j] = 0
    for t in range(W - 1, -1, -1):
        a = act[t]
        dx = dax[t]
        dr = dah[t]
        _gate_gradients(
            a[:H], a[H : 2 * H], a[2 * H :], aux[t], h_prev[t], dh_in[t], dh_next,
            dx[:H], dx[H : 2 * H], dx[2 * H :], dr[:H], dr[H : 2 * H], dr[2 * H :],
        )
        add_mat_vec(wh, dr, dh_next)


@disjoint
def _gate_gradients(a_r, a_z, a_n, hn, h_prev, dh_in, dh_next, dx_r, dx_z, dx_n, dr_r, dr_z, dr_n):
    """One step of :func:`backward_window`: the gate gradients from the gradient reaching ``h``
    (``dh_in + dh_next``); leaves the direct path's share of dL/dh_{t-1} in ``dh_next``."""
    one = a_r.dtype.type(1.0)  # typed, so that float32 windows stay float32
    for j in range(hn.shape[0]):
        r = a_r[j]
        z = a_z[j]
        n = a_n[j]
        dh = dh_in[j] + dh_next[j]
        dan = dh * (one - z) * (one - n * n)
        dar = dan * hn[j] * r * (one - r)
        daz = dh * (h_prev[j] - n) * z * (one - z)
        dx_r[j] = dar
        dx_z[j] = daz
        dx_n[j] = dan
        dr_r[j] = dar
        dr_z[j] = daz
        dr_n[j] = dan * r
        # the direct path h = ... + z * h_prev, added to the matrix path below
        dh_next[j] = dh * z
