"""minGRU cell (Feng et al., 2024, "Were RNNs All We Needed?"): forward step and backward pass.

The gates read the input only, so a step has no recurrent matrix product: it costs O(H x inputs),
not O(H^2). Gates laid out as ``[z | c]`` (2 * hidden)::

    z = sigmoid(b_z + x @ wx_z)
    c = b_c + x @ wx_c                  # the candidate state, linear as in the paper
    h = (1 - z) * h_prev + z * c

Without a recurrent matrix, the gradient reaching ``h_prev`` is the direct path ``(1 - z) * dh``.
"""

from ._jit import disjoint, kernel
from .linalg import add_vec_mat, sigmoid


@kernel
def forward_step(wx, b, x, h_prev, h, act):
    """One step. Writes ``h`` and the activations ``act`` = [z, c]."""
    H = h.shape[0]
    for g in range(2 * H):
        act[g] = b[g]
    add_vec_mat(x, wx, act)
    _gates(act[:H], act[H:], h_prev, h)


@disjoint
def _gates(a_z, c, h_prev, h):
    """The update gate from its pre-activation (in place), then ``h``."""
    for j in range(h.shape[0]):
        z = sigmoid(a_z[j])
        a_z[j] = z
        h[j] = (1.0 - z) * h_prev[j] + z * c[j]


@kernel
def backward_window(h_prev, act, dh_in, dax, carry):
    """Backward through the stored window, newest first; writes dL/d(pre-activation) into
    ``dax[t]`` ([z, c]). ``carry`` (2, H) is scratch; row 0 carries dL/dh back in time."""
    W = act.shape[0]
    H = carry.shape[1]
    dh_next = carry[0]
    for j in range(H):
        dh_next[j] = 0
    for t in range(W - 1, -1, -1):
        a = act[t]
        d = dax[t]
        _gate_gradients(a[:H], a[H:], h_prev[t], dh_in[t], dh_next, d[:H], d[H:])


@disjoint
def _gate_gradients(z_t, c, h_prev, dh_in, dh_next, da_z, da_c):
    """One step of :func:`backward_window`; leaves dL/dh_{t-1} in ``dh_next``."""
    one = z_t.dtype.type(1.0)  # typed, so that float32 windows stay float32
    for j in range(c.shape[0]):
        z = z_t[j]
        dh = dh_in[j] + dh_next[j]
        da_z[j] = dh * (c[j] - h_prev[j]) * z * (one - z)
        da_c[j] = dh * z
        dh_next[j] = dh * (one - z)
