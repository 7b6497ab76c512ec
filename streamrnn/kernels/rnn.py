"""Elman RNN cell (tanh): forward step and backward pass through a stored window.

For one step: ``h = tanh(b + x @ wx + h_prev @ wh)``. The activation stored in ``act`` is ``h``.
"""

from ._jit import kernel
from .linalg import add_mat_vec, add_vec_mat, tanh


@kernel
def forward_step(wx, wh, b, x, h_prev, h, act):
    """One step. Writes ``h`` and ``act`` (the same values: the cell has one gate)."""
    H = h.shape[0]
    for g in range(H):
        act[g] = b[g]
    add_vec_mat(x, wx, act)
    add_vec_mat(h_prev, wh, act)
    for g in range(H):
        v = tanh(act[g])
        act[g] = v
        h[g] = v


@kernel
def backward_window(wh, act, dh_in, dax, carry):
    """Backward through the stored window; writes dL/d(pre-activation) into ``dax[t]``.

    ``carry`` (2, H) is scratch; row 0 carries dL/dh back in time.
    """
    W = act.shape[0]
    H = carry.shape[1]
    one = act.dtype.type(1.0)  # typed, so that float32 windows stay float32
    dh_next = carry[0]
    for j in range(H):
        dh_next[j] = 0
    for t in range(W - 1, -1, -1):
        da = dax[t]
        for j in range(H):
            h = act[t, j]
            da[j] = (dh_in[t, j] + dh_next[j]) * (one - h * h)
            dh_next[j] = 0  # add_mat_vec below adds the next one into it
        add_mat_vec(wh, da, dh_next)
