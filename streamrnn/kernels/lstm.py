"""LSTM cell: forward step and backward pass through a stored window.

Gates are laid out as ``[i | f | g | o]`` along the last axis (4 * hidden). For one step::

    a = b + x @ wx + h_prev @ wh
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
    c = f * c_prev + i * g
    h = o * tanh(c)

The forward step stores the gate activations (``act``), ``c`` and ``tanh(c)`` (``aux``), so the
backward pass never recomputes the forward. ``tanh(c)`` is taken of the stored (rounded) ``c`` and
``h`` is the product of the stored ``o`` and ``tanh(c)``, both in strict arithmetic, so that
:func:`restore_window` recomputes them bit for bit (pickles leave them out).
"""

from ._jit import disjoint, kernel
from .linalg import add_mat_vec, add_vec_mat, sigmoid, tanh, tanh_exact


@kernel
def forward_step(wx, wh, b, x, h_prev, c_prev, h, c, act, aux):
    """One step. Writes ``h``, ``c``, the activations ``act`` (4H) and ``aux = tanh(c)``."""
    H = h.shape[0]
    G = 4 * H
    for g in range(G):
        act[g] = b[g]
    add_vec_mat(x, wx, act)
    add_vec_mat(h_prev, wh, act)
    _gates(act[:H], act[H : 2 * H], act[2 * H : 3 * H], act[3 * H :], c_prev, c, aux, h)


@disjoint
def _gates(a_i, a_f, a_g, a_o, c_prev, c, aux, h):
    """The gates of one step from their pre-activations (in place), then ``c``, ``tanh(c)`` and
    ``h``. One array per gate: see :data:`._jit.disjoint`."""
    for j in range(h.shape[0]):
        ig = sigmoid(a_i[j])
        fg = sigmoid(a_f[j])
        gg = tanh(a_g[j])
        og = sigmoid(a_o[j])
        a_i[j] = ig
        a_f[j] = fg
        a_g[j] = gg
        a_o[j] = og
        c[j] = fg * c_prev[j] + ig * gg
        aux[j] = tanh_exact(c[j])
        h[j] = a_o[j] * aux[j]


@kernel
def restore_window(c, act, aux, h):
    """``aux`` and ``h`` of stored window rows from their ``c`` and output gate, exactly as
    :func:`forward_step` computed them."""
    H = h.shape[1]
    for t in range(h.shape[0]):
        for j in range(H):
            aux[t, j] = tanh_exact(c[t, j])
            h[t, j] = act[t, 3 * H + j] * aux[t, j]


@kernel
def backward_window(wh, c_prev, act, aux, dh_in, dax, carry):
    """Backward through the ``W`` stored steps of a window, newest first.

    ``c_prev[t]`` is the cell state before step ``t``; ``act[t]``/``aux[t]`` what the forward stored;
    ``dh_in[t]`` the loss gradient reaching ``h_t`` from above (head or upper layer). Writes the
    gradient of the gate pre-activations into ``dax[t]`` (the same for the input and the recurrent
    weights in an LSTM). ``carry`` (2, H) is scratch for dL/dh and dL/dc flowing back in time; the
    state before the window is a constant (truncation).
    """
    W = act.shape[0]
    H = carry.shape[1]
    dh_next = carry[0]
    dc_next = carry[1]
    for j in range(H):
        dh_next[j] = 0
        dc_next[j] = 0
    for t in range(W - 1, -1, -1):
        a = act[t]
        da = dax[t]
        _gate_gradients(
            a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :], aux[t], c_prev[t], dh_in[t], dh_next, dc_next,
            da[:H], da[H : 2 * H], da[2 * H : 3 * H], da[3 * H :],
        )
        # dL/dh_{t-1} = wh @ da (wh is (H, 4H), rows contiguous)
        add_mat_vec(wh, da, dh_next)


@disjoint
def _gate_gradients(a_i, a_f, a_g, a_o, tc, c_prev, dh_in, dh_next, dc_next, d_i, d_f, d_g, d_o):
    """One step of :func:`backward_window`: the gate gradients ``d_*`` from the gradient reaching
    ``h`` (``dh_in + dh_next``) and ``c`` (``dc_next``). Leaves dL/dc_{t-1} in ``dc_next`` and
    zeros ``dh_next`` for the product that follows."""
    one = a_i.dtype.type(1.0)  # typed, so that float32 windows stay float32 (twice the lanes)
    for j in range(tc.shape[0]):
        ig = a_i[j]
        fg = a_f[j]
        gg = a_g[j]
        og = a_o[j]
        th = tc[j]
        dh = dh_in[j] + dh_next[j]
        dh_next[j] = 0
        dc = dh * og * (one - th * th) + dc_next[j]
        d_i[j] = dc * gg * ig * (one - ig)
        d_f[j] = dc * c_prev[j] * fg * (one - fg)
        d_g[j] = dc * ig * (one - gg * gg)
        d_o[j] = dh * th * og * (one - og)
        dc_next[j] = dc * fg
