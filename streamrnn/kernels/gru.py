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

import numpy as np

from ._jit import kernel


@kernel
def forward_step(wx, wh, b, bh, x, h_prev, h, act, aux):
    """One step. Writes ``h``, the activations ``act`` = [r, z, n] and ``aux`` = hn."""
    H = h.shape[0]
    for g in range(3 * H):
        act[g] = b[g]
    for j in range(H):
        aux[j] = bh[j]
    for i in range(x.shape[0]):
        xi = x[i]
        if xi != 0.0:
            row = wx[i]
            for g in range(3 * H):
                act[g] += xi * row[g]
    for j in range(H):
        hj = h_prev[j]
        row = wh[j]
        for g in range(2 * H):
            act[g] += hj * row[g]
        for g in range(H):
            aux[g] += hj * row[2 * H + g]
    for j in range(H):
        r = 1.0 / (1.0 + np.exp(-act[j]))
        z = 1.0 / (1.0 + np.exp(-act[H + j]))
        n = np.tanh(act[2 * H + j] + r * aux[j])
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
    dh_next = carry[0]
    for j in range(H):
        dh_next[j] = 0.0
    for t in range(W - 1, -1, -1):
        a = act[t]
        dx = dax[t]
        dr = dah[t]
        for j in range(H):
            r = a[j]
            z = a[H + j]
            n = a[2 * H + j]
            dh = dh_in[t, j] + dh_next[j]
            dan = dh * (1.0 - z) * (1.0 - n * n)
            dar = dan * aux[t, j] * r * (1.0 - r)
            daz = dh * (h_prev[t, j] - n) * z * (1.0 - z)
            dx[j] = dar
            dx[H + j] = daz
            dx[2 * H + j] = dan
            dr[j] = dar
            dr[H + j] = daz
            dr[2 * H + j] = dan * r
            # the direct path h = ... + z * h_prev, added to the matrix path below
            dh_next[j] = dh * z
        for j in range(H):
            row = wh[j]
            s = 0.0
            for g in range(3 * H):
                s += row[g] * dr[g]
            dh_next[j] += s
