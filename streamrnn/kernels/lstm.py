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

from ._jit import kernel
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
    for j in range(H):
        ig = sigmoid(act[j])
        fg = sigmoid(act[H + j])
        gg = tanh(act[2 * H + j])
        og = sigmoid(act[3 * H + j])
        act[j] = ig
        act[H + j] = fg
        act[2 * H + j] = gg
        act[3 * H + j] = og
        c[j] = fg * c_prev[j] + ig * gg
        aux[j] = tanh_exact(c[j])
        h[j] = act[3 * H + j] * aux[j]


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
    one = act.dtype.type(1.0)  # typed, so that float32 windows stay float32 (twice the lanes)
    dh_next = carry[0]
    dc_next = carry[1]
    for j in range(H):
        dh_next[j] = 0
        dc_next[j] = 0
    for t in range(W - 1, -1, -1):
        a = act[t]
        da = dax[t]
        for j in range(H):
            ig = a[j]
            fg = a[H + j]
            gg = a[2 * H + j]
            og = a[3 * H + j]
            tc = aux[t, j]
            dh = dh_in[t, j] + dh_next[j]
            dh_next[j] = 0  # add_mat_vec below adds the next one into it
            dc = dh * og * (one - tc * tc) + dc_next[j]
            da[j] = dc * gg * ig * (one - ig)
            da[H + j] = dc * c_prev[t, j] * fg * (one - fg)
            da[2 * H + j] = dc * ig * (one - gg * gg)
            da[3 * H + j] = dh * tc * og * (one - og)
            dc_next[j] = dc * fg
        # dL/dh_{t-1} = wh @ da (wh is (H, 4H), rows contiguous)
        add_mat_vec(wh, da, dh_next)
