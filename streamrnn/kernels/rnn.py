"""Elman RNN cell (tanh): forward step and backward pass through a stored window.

For one step: ``h = tanh(b + x @ wx + h_prev @ wh)``. The activation stored in ``act`` is ``h``.
"""

from ._jit import disjoint, kernel
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
    dh_next = carry[0]
    for j in range(H):
        dh_next[j] = 0
    for t in range(W - 1, -1, -1):
        _step_gradient(act[t], dh_in[t], dh_next, dax[t])
        add_mat_vec(wh, dax[t], dh_next)


@disjoint
def _step_gradient(h, dh_in, dh_next, da):
    """One step of :func:`backward_window`: ``da`` from the gradient reaching ``h``; zeros
    ``dh_next`` for the product that follows (see :data:`._jit.disjoint`)."""
    one = h.dtype.type(1.0)  # typed, so that float32 windows stay float32
    for j in range(h.shape[0]):
        da[j] = (dh_in[j] + dh_next[j]) * (one - h[j] * h[j])
        dh_next[j] = 0
