"""One online TBPTT(k1, k2) step over a model's flat state.

A model's state is two arrays that the estimator owns (see :mod:`streamrnn.layout`):

- ``meta`` (int64): sizes, offsets of every block, and the counters that advance with the stream;
- ``mem`` (float): parameters, optimizer moments, running normalisation statistics and a sliding
  buffer of the last ``truncation`` steps' activations.

A third array, ``scratch``, holds what is recomputed on every call (gradients, backward buffers,
the state of a prediction) and is not part of the model. Keeping the model in two arrays makes a
call cheap (few arguments to unbox), pickling exact, and one model per key compact.

The sliding buffer has ``2 * truncation + 2`` rows. Row ``pos - 1`` holds the current state; the
last ``truncation`` steps are rows ``pos - W .. pos - 1`` and the state before them is row
``pos - W - 1``, so every window is a contiguous slice (matrix products over the window go to BLAS).
When ``pos`` reaches the end, the last ``truncation + 1`` rows are copied to the front.
"""

import numpy as np

from . import gru, heads, lstm, optim, rnn
from ._jit import kernel

# --- meta: header slots -----------------------------------------------------------------------
CELL, LAYERS, HIDDEN, GATES, N_IN, N_OUT, TRUNCATION, ROWS, UPDATE_EVERY = range(9)
HEAD, OPTIMIZER, N_PARAMS, NORM_X, NORM_Y, CELL_WIDTH = range(9, 15)
# counters that advance with the stream
POS, N_STEPS, N_SINCE_UPDATE, N_UPDATES, N_SKIPPED, OPT_STEP = range(16, 22)
# block offsets: meta[OFFSETS + kind * MAX_LAYERS + layer]
OFFSETS = 32
MAX_LAYERS = 8

RNN, GRU, LSTM = 0, 1, 2

# --- block kinds ------------------------------------------------------------------------------
# parameters, first in mem, in this order; the optimizer moments mirror them at +P and +2P, and
# the gradient mirrors them at the same offsets in scratch
WX, WH, BX, BH, WY, BY = range(6)
# the rest of the state
XMEAN, XM2, XCOUNT, YSTAT, HYPER, XS, HS, CS, ACT, AUX, YS = range(6, 17)
# scratch
DAX, DAH, DHIN, DXB, CARRY, DOUT, OUT, PX, PH, PC, PACT, PAUX = range(17, 29)
N_KINDS = 29

# --- hyperparameters, mem[HYPER + k] ----------------------------------------------------------
LR, CLIP_NORM, BETA1, BETA2, EPS, MOMENTUM, RHO, HUBER_DELTA, X_CLIP = range(9)
N_HYPER = 9

# YSTAT block: count, mean, sum of squared deviations (Welford)
MIN_VAR = 1e-12


@kernel
def _off(meta, kind, layer):
    return meta[OFFSETS + kind * MAX_LAYERS + layer]


@kernel
def _vec(arr, meta, kind, layer, n):
    o = _off(meta, kind, layer)
    return arr[o : o + n]


@kernel
def _mat(arr, meta, kind, layer, rows, cols):
    o = _off(meta, kind, layer)
    return arr[o : o + rows * cols].reshape((rows, cols))


@kernel
def _cube(arr, meta, kind, layer, a, b, c):
    o = _off(meta, kind, layer)
    return arr[o : o + a * b * c].reshape((a, b, c))


@kernel
def _std(count, m2):
    if count > 1.0:
        var = m2 / count
        if var > MIN_VAR:
            return np.sqrt(var)
    return 1.0


@kernel
def normalise_input(mem, meta, x, present, dest, update):
    """Write the normalised input into ``dest``; with ``update``, first fold ``x`` into the stats.

    A feature that is not ``present`` reads as 0 after normalisation (its running mean).
    """
    n_in = meta[N_IN]
    if meta[NORM_X] == 0:
        for i in range(n_in):
            dest[i] = x[i] if present[i] != 0 else 0.0
        return
    mean = _vec(mem, meta, XMEAN, 0, n_in)
    m2 = _vec(mem, meta, XM2, 0, n_in)
    count = _vec(mem, meta, XCOUNT, 0, n_in)
    hyper = _vec(mem, meta, HYPER, 0, N_HYPER)
    clip = hyper[X_CLIP]
    for i in range(n_in):
        if present[i] == 0:
            dest[i] = 0.0
            continue
        v = x[i]
        if update:
            n = count[i] + 1.0
            d = v - mean[i]
            mean[i] += d / n
            m2[i] += d * (v - mean[i])
            count[i] = n
        if count[i] == 0.0:
            dest[i] = 0.0
            continue
        z = (v - mean[i]) / _std(count[i], m2[i])
        if z > clip:
            z = clip
        elif z < -clip:
            z = -clip
        elif not np.isfinite(z):
            z = 0.0
        dest[i] = z


@kernel
def normalise_target(mem, meta, y, update):
    if meta[NORM_Y] == 0 or meta[HEAD] == heads.SOFTMAX:
        return y
    s = _vec(mem, meta, YSTAT, 0, 3)
    if update:
        n = s[0] + 1.0
        d = y - s[1]
        s[1] += d / n
        s[2] += d * (y - s[1])
        s[0] = n
    return (y - s[1]) / _std(s[0], s[2])


@kernel
def denormalise_target(mem, meta, v):
    if meta[NORM_Y] == 0 or meta[HEAD] == heads.SOFTMAX:
        return v
    s = _vec(mem, meta, YSTAT, 0, 3)
    return v * _std(s[0], s[2]) + s[1]


@kernel
def forward_stack(mem, meta, x, hs, cs, src, dst, act, aux, adst):
    """Forward all layers one step: state row ``src`` of ``hs``/``cs`` -> row ``dst``.

    ``act``/``aux`` receive the activations at row ``adst``.
    """
    cell = meta[CELL]
    L = meta[LAYERS]
    H = meta[HIDDEN]
    G = meta[GATES] * H
    for l in range(L):
        n_in = meta[N_IN] if l == 0 else H
        inp = x if l == 0 else hs[l - 1, dst]
        wx = _mat(mem, meta, WX, l, n_in, G)
        wh = _mat(mem, meta, WH, l, H, G)
        b = _vec(mem, meta, BX, l, G)
        if cell == LSTM:
            lstm.forward_step(
                wx, wh, b, inp, hs[l, src], cs[l, src], hs[l, dst], cs[l, dst], act[l, adst], aux[l, adst]
            )
        elif cell == GRU:
            bh = _vec(mem, meta, BH, l, H)
            gru.forward_step(wx, wh, b, bh, inp, hs[l, src], hs[l, dst], act[l, adst], aux[l, adst])
        else:
            rnn.forward_step(wx, wh, b, inp, hs[l, src], hs[l, dst], act[l, adst])


@kernel
def _slide(mem, meta):
    """Copy the last ``truncation + 1`` rows of the window buffers to the front."""
    L = meta[LAYERS]
    H = meta[HIDDEN]
    G = meta[GATES] * H
    B = meta[ROWS]
    keep = meta[TRUNCATION] + 1
    src = B - keep
    xs = _mat(mem, meta, XS, 0, B, meta[N_IN])
    ys = _vec(mem, meta, YS, 0, B)
    hs = _cube(mem, meta, HS, 0, L, B, H)
    cs = _cube(mem, meta, CS, 0, L, B, meta[CELL_WIDTH])
    act = _cube(mem, meta, ACT, 0, L, B, G)
    aux = _cube(mem, meta, AUX, 0, L, B, H)
    for r in range(keep):
        xs[r] = xs[src + r]
        ys[r] = ys[src + r]
        for l in range(L):
            hs[l, r] = hs[l, src + r]
            cs[l, r] = cs[l, src + r]
            act[l, r] = act[l, src + r]
            aux[l, r] = aux[l, src + r]
    meta[POS] = keep


@kernel
def _head_out(mem, meta, h, out):
    H = meta[HIDDEN]
    O = meta[N_OUT]
    heads.linear_forward(_mat(mem, meta, WY, 0, H, O), _vec(mem, meta, BY, 0, O), h, out)


@kernel
def compute_gradient(mem, meta, scratch):
    """Gradient of the loss of the last ``min(update_every, W)`` steps, back through the last
    ``W = min(truncation, steps seen)`` steps, into scratch[0:P]. Returns the summed loss."""
    cell = meta[CELL]
    L = meta[LAYERS]
    H = meta[HIDDEN]
    G = meta[GATES] * H
    O = meta[N_OUT]
    B = meta[ROWS]
    K = meta[TRUNCATION]
    pos = meta[POS]
    W = min(K, meta[N_STEPS])
    n_loss = min(meta[UPDATE_EVERY], W)
    first = pos - W
    hyper = _vec(mem, meta, HYPER, 0, N_HYPER)

    xs = _mat(mem, meta, XS, 0, B, meta[N_IN])
    ys = _vec(mem, meta, YS, 0, B)
    hs = _cube(mem, meta, HS, 0, L, B, H)
    cs = _cube(mem, meta, CS, 0, L, B, meta[CELL_WIDTH])
    act = _cube(mem, meta, ACT, 0, L, B, G)
    aux = _cube(mem, meta, AUX, 0, L, B, H)

    dax = _cube(scratch, meta, DAX, 0, L, K, G)
    dah = _cube(scratch, meta, DAH, 0, L, K, G)
    dh_in = _mat(scratch, meta, DHIN, 0, K, H)[:W]
    dxb = _mat(scratch, meta, DXB, 0, K, H)[:W]
    carry = _mat(scratch, meta, CARRY, 0, 2, H)
    dout = _vec(scratch, meta, DOUT, 0, O)
    out = _vec(scratch, meta, OUT, 0, O)

    # head: loss on the last n_loss steps
    wy = _mat(mem, meta, WY, 0, H, O)
    gwy = _mat(scratch, meta, WY, 0, H, O)
    gby = _vec(scratch, meta, BY, 0, O)
    gwy[:] = 0.0
    gby[:] = 0.0
    dh_in[:] = 0.0
    loss = 0.0
    for t in range(W - n_loss, W):
        h = hs[L - 1, first + t]
        _head_out(mem, meta, h, out)
        loss += heads.loss_grad(meta[HEAD], out, ys[first + t], hyper[HUBER_DELTA], dout)
        for j in range(H):
            hj = h[j]
            s = 0.0
            for k in range(O):
                gwy[j, k] += hj * dout[k]
                s += wy[j, k] * dout[k]
            dh_in[t, j] = s
        for k in range(O):
            gby[k] += dout[k]

    # layers, top to bottom; the input gradient of layer l is the dh_in of layer l - 1
    for l in range(L - 1, -1, -1):
        n_in = meta[N_IN] if l == 0 else H
        wx = _mat(mem, meta, WX, l, n_in, G)
        wh = _mat(mem, meta, WH, l, H, G)
        da_x = dax[l, :W]
        da_h = dah[l, :W] if cell == GRU else da_x
        h_prev = hs[l, first - 1 : pos - 1]
        if cell == LSTM:
            lstm.backward_window(wh, cs[l, first - 1 : pos - 1], act[l, first:pos], aux[l, first:pos], dh_in, da_x, carry)
        elif cell == GRU:
            gru.backward_window(wh, h_prev, act[l, first:pos], aux[l, first:pos], dh_in, da_x, da_h, carry)
        else:
            rnn.backward_window(wh, act[l, first:pos], dh_in, da_x, carry)
        inputs = xs[first:pos] if l == 0 else hs[l - 1, first:pos]
        if n_in > 0:  # a model may have seen no feature yet
            np.dot(inputs.T, da_x, _mat(scratch, meta, WX, l, n_in, G))
        np.dot(h_prev.T, da_h, _mat(scratch, meta, WH, l, H, G))
        gb = _vec(scratch, meta, BX, l, G)
        gb[:] = 0.0
        for t in range(W):
            for g in range(G):
                gb[g] += da_x[t, g]
        if cell == GRU:
            gbh = _vec(scratch, meta, BH, l, H)
            gbh[:] = 0.0
            for t in range(W):
                for j in range(H):
                    gbh[j] += da_h[t, 2 * H + j]
        if l > 0:
            np.dot(da_x, wx.T, dxb)
            dh_in[:] = dxb
    return loss


@kernel
def apply_gradient(mem, meta, scratch):
    """Clip by global norm and take one optimizer step. Returns False (and counts the skip) when
    the gradient is not finite: the parameters are then left as they were."""
    P = meta[N_PARAMS]
    hyper = _vec(mem, meta, HYPER, 0, N_HYPER)
    grad = scratch[:P]
    norm = optim.global_norm(grad)
    if not np.isfinite(norm):
        meta[N_SKIPPED] += 1
        return False
    clip = hyper[CLIP_NORM]
    if clip > 0.0 and norm > clip:
        scale = clip / norm
        for k in range(P):
            grad[k] *= scale
    params = mem[:P]
    m1 = mem[P : 2 * P]
    m2 = mem[2 * P : 3 * P]
    opt = meta[OPTIMIZER]
    meta[OPT_STEP] += 1
    if opt == optim.ADAM:
        optim.adam(params, grad, m1, m2, hyper[LR], hyper[BETA1], hyper[BETA2], hyper[EPS], meta[OPT_STEP])
    elif opt == optim.RMSPROP:
        optim.rmsprop(params, grad, m2, hyper[LR], hyper[RHO], hyper[EPS])
    else:
        optim.sgd(params, grad, m1, hyper[LR], hyper[MOMENTUM])
    meta[N_UPDATES] += 1
    return True


@kernel
def step_loss(mem, meta, scratch, row, target):
    """Loss of the head at window row ``row`` against ``target`` (no gradient kept)."""
    L = meta[LAYERS]
    H = meta[HIDDEN]
    B = meta[ROWS]
    hs = _cube(mem, meta, HS, 0, L, B, H)
    out = _vec(scratch, meta, OUT, 0, meta[N_OUT])
    dout = _vec(scratch, meta, DOUT, 0, meta[N_OUT])
    _head_out(mem, meta, hs[L - 1, row], out)
    return heads.loss_grad(meta[HEAD], out, target, _vec(mem, meta, HYPER, 0, N_HYPER)[HUBER_DELTA], dout)


@kernel
def learn_step(mem, meta, scratch, x, present, y):
    """Advance the state by one event and learn from it (one optimizer step every
    ``update_every`` events). Returns the loss of this event's prediction, made from the state and
    parameters before learning it (the prequential loss; for the softmax head, -ln p(y))."""
    if meta[POS] == meta[ROWS]:
        _slide(mem, meta)
    pos = meta[POS]
    L = meta[LAYERS]
    H = meta[HIDDEN]
    B = meta[ROWS]
    G = meta[GATES] * H
    xs = _mat(mem, meta, XS, 0, B, meta[N_IN])
    normalise_input(mem, meta, x, present, xs[pos], True)
    hs = _cube(mem, meta, HS, 0, L, B, H)
    cs = _cube(mem, meta, CS, 0, L, B, meta[CELL_WIDTH])
    act = _cube(mem, meta, ACT, 0, L, B, G)
    aux = _cube(mem, meta, AUX, 0, L, B, H)
    forward_stack(mem, meta, xs[pos], hs, cs, pos - 1, pos, act, aux, pos)
    target = normalise_target(mem, meta, y, True)
    _vec(mem, meta, YS, 0, B)[pos] = target
    loss = step_loss(mem, meta, scratch, pos, target)
    meta[POS] = pos + 1
    meta[N_STEPS] += 1
    meta[N_SINCE_UPDATE] += 1
    if meta[N_SINCE_UPDATE] >= meta[UPDATE_EVERY]:
        meta[N_SINCE_UPDATE] = 0
        compute_gradient(mem, meta, scratch)
        apply_gradient(mem, meta, scratch)
    return loss


@kernel
def _load_state(mem, meta, scratch):
    """Copy the current state (window row pos - 1) into the prediction state's row 0."""
    L = meta[LAYERS]
    H = meta[HIDDEN]
    B = meta[ROWS]
    CW = meta[CELL_WIDTH]
    hs = _cube(mem, meta, HS, 0, L, B, H)
    cs = _cube(mem, meta, CS, 0, L, B, CW)
    ph = _cube(scratch, meta, PH, 0, L, 2, H)
    pc = _cube(scratch, meta, PC, 0, L, 2, CW)
    r = meta[POS] - 1
    for l in range(L):
        ph[l, 0] = hs[l, r]
        pc[l, 0] = cs[l, r]


@kernel
def _predict_from(mem, meta, scratch, x, present, src, out):
    """Forward one step from prediction-state row ``src`` into row ``1 - src``; head into ``out``
    (probabilities for the softmax head, de-normalised value for regression)."""
    L = meta[LAYERS]
    H = meta[HIDDEN]
    G = meta[GATES] * H
    px = _vec(scratch, meta, PX, 0, meta[N_IN])
    normalise_input(mem, meta, x, present, px, False)
    ph = _cube(scratch, meta, PH, 0, L, 2, H)
    pc = _cube(scratch, meta, PC, 0, L, 2, meta[CELL_WIDTH])
    pact = _cube(scratch, meta, PACT, 0, L, 1, G)
    paux = _cube(scratch, meta, PAUX, 0, L, 1, H)
    forward_stack(mem, meta, px, ph, pc, src, 1 - src, pact, paux, 0)
    _head_out(mem, meta, ph[L - 1, 1 - src], out)
    if meta[HEAD] == heads.SOFTMAX:
        heads.softmax_inplace(out)
    else:
        out[0] = denormalise_target(mem, meta, out[0])


@kernel
def predict_step(mem, meta, scratch, x, present, out):
    """The prediction for input ``x`` from the current state; the model is not changed."""
    _load_state(mem, meta, scratch)
    _predict_from(mem, meta, scratch, x, present, 0, out)


@kernel
def rollout(mem, meta, scratch, xs, present, y_col, out):
    """Autoregressive forecast from the current state: ``out[s]`` is the prediction for step s.

    Row ``s`` of ``xs`` is the raw input of step s; for s >= 1 its column ``y_col`` is overwritten
    with the prediction of step s - 1 (feeding the forecast back). The model is not changed.
    """
    _load_state(mem, meta, scratch)
    o = _vec(scratch, meta, DOUT, 0, meta[N_OUT])
    src = 0
    for s in range(xs.shape[0]):
        if s > 0 and y_col >= 0:
            xs[s, y_col] = out[s - 1]
        _predict_from(mem, meta, scratch, xs[s], present[s], src, o)
        out[s] = o[0]
        src = 1 - src
