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
``pos - W - 1``, so every window is a contiguous slice (the products over a window read contiguous rows).
When ``pos`` reaches the end, the last ``truncation + 1`` rows are copied to the front.
"""

import numpy as np

from . import gru, heads, linalg, lstm, mingru, ngram, optim, rnn
from ._jit import kernel
from .blocks import *  # noqa: F403 (the slots and kinds the kernels name)
from .blocks import active_outputs, cube, input_and_recurrent_weights, mat, offset, rows_of, vec
from .views import view

# the cells' dispatch codes (streamrnn/cells.py declares which cell has which)
RNN, GRU, LSTM, MINGRU = 0, 1, 2, 3

# YSTAT block: count, mean, variance (Welford's update, with the variance itself kept rather than the
# sum of squared deviations: the sum grows with the count and overflowed after some millions of
# extreme but accepted values; the variance stays below the square of the largest deviation)
MIN_VAR = 1e-12


@kernel
def _std(count, var):
    if count > 1.0 and var > MIN_VAR:
        return np.sqrt(var)
    return 1.0


@kernel
def normalise_input(mem, meta, x, present, dest, update):
    """Write the normalised input into ``dest``; with ``update``, then fold ``x`` into the stats.

    The stats are those from before this event, in the learn step as in a prediction, so that a
    learn step's forward is the very forward ``predict_one`` made for the same input. A feature that
    is not ``present`` reads as 0 after normalisation (its running mean).
    """
    n_in = meta[N_IN]
    if meta[NORM_X] == 0:
        for i in range(n_in):
            dest[i] = x[i] if present[i] != 0 else 0.0
        return
    mean = vec(mem, meta, XMEAN, 0)
    var = vec(mem, meta, XVAR, 0)
    count = vec(mem, meta, XCOUNT, 0)
    hyper = vec(mem, meta, HYPER, 0)
    clip = hyper[X_CLIP]
    for i in range(n_in):
        if present[i] == 0:
            dest[i] = 0.0
            continue
        v = x[i]
        if count[i] == 0.0:
            z = 0.0
        else:
            z = (v - mean[i]) / _std(count[i], var[i])
            if z > clip:
                z = clip
            elif z < -clip:
                z = -clip
            elif not np.isfinite(z):
                z = 0.0
        dest[i] = z
        if update:
            n = count[i] + 1.0
            d = v - mean[i]
            mean[i] += d / n
            var[i] += (d * (v - mean[i]) - var[i]) / n
            count[i] = n


@kernel
def normalise_target(mem, meta, y, update):
    if meta[NORM_Y] == 0 or meta[HEAD] == heads.SOFTMAX:
        return y
    s = vec(mem, meta, YSTAT, 0)
    if update:
        n = s[0] + 1.0
        d = y - s[1]
        s[1] += d / n
        s[2] += (d * (y - s[1]) - s[2]) / n
        s[0] = n
    return (y - s[1]) / _std(s[0], s[2])


@kernel
def denormalise_target(mem, meta, v):
    if meta[NORM_Y] == 0 or meta[HEAD] == heads.SOFTMAX:
        return v
    s = vec(mem, meta, YSTAT, 0)
    return v * _std(s[0], s[2]) + s[1]


@kernel
def embed_input(mem, meta, tokens, dest):
    """``dest`` = the sum of the embedding rows of the active tokens (-1: slot empty)."""
    e = meta[EMBED]
    if e == 0:
        return
    table = mat(mem, meta, EMB, 0)
    for k in range(e):
        dest[k] = 0.0
    for s in range(tokens.shape[0]):
        tok = int(tokens[s])
        if tok >= 0:
            row = table[tok]
            for k in range(e):
                dest[k] += row[k]


@kernel
def forward_stack(mem, meta, x, hs, cs, src, dst, act, aux, adst):
    """Forward all layers one step: state row ``src`` of ``hs``/``cs`` -> row ``dst``.

    ``act``/``aux`` receive the activations at row ``adst``.
    """
    cell = meta[CELL]
    L = meta[LAYERS]
    for l in range(L):
        inp = x if l == 0 else hs[l - 1, dst]
        wx = mat(mem, meta, WX, l)
        wh = mat(mem, meta, WH, l)
        b = vec(mem, meta, BX, l)
        if cell == LSTM:
            lstm.forward_step(
                wx, wh, b, inp, hs[l, src], cs[l, src], hs[l, dst], cs[l, dst], act[l, adst], aux[l, adst]
            )
        elif cell == GRU:
            bh = vec(mem, meta, BH, l)
            gru.forward_step(wx, wh, b, bh, inp, hs[l, src], hs[l, dst], act[l, adst], aux[l, adst])
        elif cell == MINGRU:
            mingru.forward_step(wx, b, inp, hs[l, src], hs[l, dst], act[l, adst])
        else:
            rnn.forward_step(wx, wh, b, inp, hs[l, src], hs[l, dst], act[l, adst])


@kernel
def _slide(mem, meta):
    """Copy the last ``truncation + 1`` rows of the window buffers to the front."""
    L = meta[LAYERS]
    B = meta[ROWS]
    keep = meta[TRUNCATION] + 1
    src = B - keep
    xs = mat(mem, meta, XS, 0)
    ys = vec(mem, meta, YS, 0)
    tok = mat(mem, meta, TOK, 0)
    ngb = mat(mem, meta, NGB, 0)
    hs = cube(mem, meta, HS, 0)
    cs = cube(mem, meta, CS, 0)
    act = cube(mem, meta, ACT, 0)
    aux = cube(mem, meta, AUX, 0)
    for r in range(keep):
        xs[r] = xs[src + r]
        ys[r] = ys[src + r]
        tok[r] = tok[src + r]
        ngb[r] = ngb[src + r]
        for l in range(L):
            hs[l, r] = hs[l, src + r]
            cs[l, r] = cs[l, src + r]
            act[l, r] = act[l, src + r]
            aux[l, r] = aux[l, src + r]
    meta[POS] = keep


@kernel
def _head_out(mem, meta, h, out, buckets):
    """The head's output for the active classes: ``out`` has N_OUT entries. ``buckets``: the
    n-gram table rows of this step's context (empty without n-gram connections)."""
    heads.linear_forward(mat(mem, meta, WY, 0), vec(mem, meta, BY, 0), h, out)
    if buckets.shape[0] > 0:
        ngram.add_rows(mat(mem, meta, NGW, 0), buckets, meta[N_OUT], out)


@kernel
def _window_buckets(mem, meta, row):
    """The n-gram table rows stored for window row ``row``."""
    return mat(mem, meta, NGB, 0)[row]


@kernel
def _history_from_window(mem, meta, token, hist):
    """``hist`` = [token, the slot-0 tokens of the last len(hist) - 1 steps learned, newest first]."""
    tok = mat(mem, meta, TOK, 0)
    pos = meta[POS]
    hist[0] = token
    for j in range(1, hist.shape[0]):
        r = pos - j
        hist[j] = tok[r, 0] if r >= 0 else -1.0


@kernel
def compute_gradient(mem, meta, scratch):
    """Gradient of the loss of the last ``min(update_every, W)`` steps, back through the last
    ``W = min(truncation, steps seen)`` steps, into scratch[0:P]. Returns the summed loss."""
    cell = meta[CELL]
    L = meta[LAYERS]
    H = meta[HIDDEN]
    O = meta[N_OUT]
    K = meta[TRUNCATION]
    pos = meta[POS]
    W = min(K, meta[N_STEPS])
    n_loss = min(meta[UPDATE_EVERY], W)
    first = pos - W
    hyper = vec(mem, meta, HYPER, 0)

    n_dense_in = meta[N_IN]
    X0 = n_dense_in + meta[EMBED]
    xs = mat(mem, meta, XS, 0)
    ys = vec(mem, meta, YS, 0)
    hs = cube(mem, meta, HS, 0)
    cs = cube(mem, meta, CS, 0)
    act = cube(mem, meta, ACT, 0)
    aux = cube(mem, meta, AUX, 0)

    dax = cube(scratch, meta, DAX, 0)
    dah = cube(scratch, meta, DAH, 0)
    dh_in = mat(scratch, meta, DHIN, 0)[:W]
    dxb = mat(scratch, meta, DXB, 0)[:W]
    carry = mat(scratch, meta, CARRY, 0)
    dout = active_outputs(scratch, meta, DOUT)
    out = active_outputs(scratch, meta, OUT)

    # head: loss on the last n_loss steps
    wy = mat(mem, meta, WY, 0)
    gwy = mat(scratch, meta, WY, 0)
    gby = vec(scratch, meta, BY, 0)
    gwy[:] = 0.0
    gby[:] = 0.0
    dh_in[:] = 0.0
    loss = 0.0
    for t in range(W - n_loss, W):
        h = hs[L - 1, first + t]
        _head_out(mem, meta, h, out, _window_buckets(mem, meta, first + t))
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
        n_in = X0 if l == 0 else H
        wx = mat(mem, meta, WX, l)
        wh = mat(mem, meta, WH, l)
        da_x = dax[l, :W]
        da_h = dah[l, :W] if cell == GRU else da_x
        h_prev = hs[l, first - 1 : pos - 1]
        if cell == LSTM:
            lstm.backward_window(wh, cs[l, first - 1 : pos - 1], act[l, first:pos], aux[l, first:pos], dh_in, da_x, carry)
        elif cell == GRU:
            gru.backward_window(wh, h_prev, act[l, first:pos], aux[l, first:pos], dh_in, da_x, da_h, carry)
        elif cell == MINGRU:
            mingru.backward_window(h_prev, act[l, first:pos], dh_in, da_x, carry)
        else:
            rnn.backward_window(wh, act[l, first:pos], dh_in, da_x, carry)
        inputs = xs[first:pos] if l == 0 else hs[l - 1, first:pos]
        if cell == LSTM or cell == RNN:
            # wx and wh are adjacent, and so are their gradients: one product of [x | h_prev] by
            # the gate gradients gives both (one product call fewer)
            width = n_in + H
            z = rows_of(scratch, meta, ZCAT, W, width)
            linalg.concat_columns(inputs, h_prev, z)
            linalg.mat_tn(z, da_x, input_and_recurrent_weights(scratch, meta, l))
        else:
            if n_in > 0:  # a model may have seen no feature yet
                linalg.mat_tn(inputs, da_x, mat(scratch, meta, WX, l))
            if cell == GRU:  # minGRU has no recurrent weights
                linalg.mat_tn(h_prev, da_h, mat(scratch, meta, WH, l))
        linalg.column_sums(da_x, vec(scratch, meta, BX, l))
        if cell == GRU:
            linalg.column_sums(da_h[:, 2 * H :], vec(scratch, meta, BH, l))
        if l > 0:
            np.dot(da_x, wx.T, dxb)
            dh_in[:] = dxb
        elif meta[EMBED] > 0:
            _embedding_gradient(mem, meta, scratch, da_x, wx[: meta[EMBED]], first, pos)
    return loss


@kernel
def _embedding_gradient(mem, meta, scratch, da_x, wx_emb, first, pos):
    """Gradient of the embedding rows used in the window, gathered in GEROWS (one row per
    distinct token, listed in TOUCHED; MARK maps a token to its row)."""
    e = meta[EMBED]
    S = meta[SLOTS]
    W = pos - first
    demb = mat(scratch, meta, DEMB, 0)[:W]
    np.dot(da_x, wx_emb.T, demb)
    tok = mat(mem, meta, TOK, 0)
    rows = mat(scratch, meta, GEROWS, 0)
    touched = vec(scratch, meta, TOUCHED, 0)
    mark = vec(scratch, meta, MARK, 0)
    n = 0
    for t in range(W):
        for s in range(S):
            tk = int(tok[first + t, s])
            if tk < 0:
                continue
            r = int(mark[tk]) - 1  # 0 means unmarked
            if r < 0:
                r = n
                n += 1
                mark[tk] = r + 1
                touched[r] = tk
                rows[r, :] = 0.0
            for k in range(e):
                rows[r, k] += demb[t, k]
    meta[N_TOUCHED] = n


@kernel
def apply_gradient(mem, meta, scratch):
    """Clip by global norm and take one optimizer step. Returns False (and counts the skip) when
    the gradient is not finite: the parameters are then left as they were."""
    D = meta[N_DENSE]
    e = meta[EMBED]
    hyper = vec(mem, meta, HYPER, 0)
    grad = view(scratch, 0, (D,))
    n_rows = meta[N_TOUCHED]
    rows = mat(scratch, meta, GEROWS, 0)[:n_rows]
    touched = vec(scratch, meta, TOUCHED, 0)
    mark = vec(scratch, meta, MARK, 0)
    for r in range(n_rows):
        mark[int(touched[r])] = 0.0
    meta[N_TOUCHED] = 0
    sq = optim.global_norm(grad) ** 2
    for r in range(n_rows):
        sq += optim.global_norm(rows[r]) ** 2
    norm = np.sqrt(sq)
    if not np.isfinite(norm):
        meta[N_SKIPPED] += 1
        return False
    clip = hyper[CLIP_NORM]
    scale = clip / norm if clip > 0.0 and norm > clip else 1.0
    meta[OPT_STEP] += 1
    _optimize(mem, meta, hyper, 0, D, grad, scale)
    # embedding rows: only those used in the window (lazy, as sparse Adam does)
    emb = offset(meta, EMB, 0)
    for r in range(n_rows):
        _optimize(mem, meta, hyper, emb + int(touched[r]) * e, e, rows[r], scale)
    if meta[OPT_STEP] % optim.FLUSH_EVERY == 0:
        # the dense parameters' optimizer averages, before decay makes any subnormal (see
        # optim.flush_small); embedding rows only decay when they are used, so are left out
        P = meta[N_PARAMS]
        optim.flush_small(view(mem, P, (D,)))
        optim.flush_small(view(mem, 2 * P, (D,)))
    meta[N_UPDATES] += 1
    return True


@kernel
def _optimize(mem, meta, hyper, start, n, grad, scale):
    """One optimizer step on parameters ``start .. start + n`` of ``mem``."""
    P = meta[N_PARAMS]
    params = view(mem, start, (n,))
    m1 = view(mem, P + start, (n,))
    m2 = view(mem, 2 * P + start, (n,))
    opt = meta[OPTIMIZER]
    if opt == optim.ADAM:
        optim.adam(params, grad, m1, m2, hyper[LR], hyper[BETA1], hyper[BETA2], hyper[EPS], meta[OPT_STEP], scale)
    elif opt == optim.RMSPROP:
        optim.rmsprop(params, grad, m2, hyper[LR], hyper[RHO], hyper[EPS], scale)
    else:
        optim.sgd(params, grad, m1, hyper[LR], hyper[MOMENTUM], scale)


@kernel
def last_output(mem, meta, scratch):
    """The de-normalised regression output of the last ``learn_step``: its prediction of the
    target, made before learning it (the number ``predict_one`` gave for the same input)."""
    return vec(scratch, meta, LEARNED_PRED, 0)[0]


@kernel
def _row_out(mem, meta, scratch, row):
    """The head's (normalised) output for window row ``row``, in scratch block OUT."""
    L = meta[LAYERS]
    hs = cube(mem, meta, HS, 0)
    out = active_outputs(scratch, meta, OUT)
    _head_out(mem, meta, hs[L - 1, row], out, _window_buckets(mem, meta, row))
    return out


@kernel
def _out_loss(mem, meta, scratch, out, target):
    """Loss of ``out`` against ``target``; its gradient goes to scratch block DOUT."""
    return heads.loss_grad(meta[HEAD], out, target, vec(mem, meta, HYPER, 0)[HUBER_DELTA],
                           active_outputs(scratch, meta, DOUT))


@kernel
def step_loss(mem, meta, scratch, row, target):
    """Loss of the head at window row ``row`` against ``target`` (no gradient kept; the loss
    ``learn_step`` computes for its row, as a function of the window, for gradient checks)."""
    return _out_loss(mem, meta, scratch, _row_out(mem, meta, scratch, row), target)


@kernel
def _same(a, b):
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return False
    return True


@kernel
def _take_predicted_forward(meta, scratch, hs, cs, act, aux, pos):
    """Copy predict_step's forward (the same parameters, state and input: the same numbers) into
    window row ``pos``."""
    L = meta[LAYERS]
    ph = cube(scratch, meta, PH, 0)
    pc = cube(scratch, meta, PC, 0)
    pact = cube(scratch, meta, PACT, 0)
    paux = cube(scratch, meta, PAUX, 0)
    for l in range(L):
        hs[l, pos] = ph[l, 1]
        cs[l, pos] = pc[l, 1]
        act[l, pos] = pact[l, 0]
        aux[l, pos] = paux[l, 0]


@kernel
def learn_step(mem, meta, scratch, x, present, tokens, y):
    """Advance the state by one event and learn from it (one optimizer step every
    ``update_every`` events). Returns the loss of this event's prediction, made from the state and
    parameters before learning it (the prequential loss; for the softmax head, -ln p(y))."""
    if meta[POS] == meta[ROWS]:
        _slide(mem, meta)
    pos = meta[POS]
    xs = mat(mem, meta, XS, 0)
    e = meta[EMBED]
    normalise_input(mem, meta, x, present, xs[pos, e:], True)
    tok = mat(mem, meta, TOK, 0)
    for s in range(meta[SLOTS]):
        tok[pos, s] = tokens[s]
    embed_input(mem, meta, tokens, xs[pos, :e])
    n_orders = meta[NG_ORDERS]
    if n_orders > 0:
        hist = vec(scratch, meta, NGHIST, 0)
        _history_from_window(mem, meta, tokens[0], hist)
        ngram.context_buckets(hist, meta[NG_BUCKETS], _window_buckets(mem, meta, pos))
    hs = cube(mem, meta, HS, 0)
    cs = cube(mem, meta, CS, 0)
    act = cube(mem, meta, ACT, 0)
    aux = cube(mem, meta, AUX, 0)
    if meta[PREDICTED_AT] == meta[N_STEPS] + 1 and _same(xs[pos], vec(scratch, meta, PX, 0)):
        _take_predicted_forward(meta, scratch, hs, cs, act, aux, pos)
    else:
        forward_stack(mem, meta, xs[pos], hs, cs, pos - 1, pos, act, aux, pos)
    meta[PREDICTED_AT] = 0
    out = _row_out(mem, meta, scratch, pos)
    # the prediction, de-normalised with the target's stats from before this event
    vec(scratch, meta, LEARNED_PRED, 0)[0] = denormalise_target(mem, meta, out[0])
    target = normalise_target(mem, meta, y, True)
    vec(mem, meta, YS, 0)[pos] = target
    loss = _out_loss(mem, meta, scratch, out, target)
    if n_orders > 0 and np.isfinite(loss):
        # the n-gram rows learn on every event (dout holds dL/dlogits of this one)
        ngram.sgd_rows(mat(mem, meta, NGW, 0), vec(mem, meta, NGV, 0),
                       _window_buckets(mem, meta, pos),
                       active_outputs(scratch, meta, DOUT), meta[N_OUT],
                       vec(mem, meta, HYPER, 0)[NG_LR])
    meta[POS] = pos + 1
    meta[N_STEPS] += 1
    meta[N_SINCE_UPDATE] += 1
    if meta[N_SINCE_UPDATE] >= meta[UPDATE_EVERY]:
        meta[N_SINCE_UPDATE] = 0
        compute_gradient(mem, meta, scratch)
        apply_gradient(mem, meta, scratch)
    return loss


@kernel
def learn_event(mem, meta, scratch, y):
    """:func:`learn_step` on the input the estimator wrote into scratch (XIN, PRESENT, TOKIN)."""
    return learn_step(mem, meta, scratch, vec(scratch, meta, XIN, 0), vec(scratch, meta, PRESENT, 0),
                      vec(scratch, meta, TOKIN, 0), y)


@kernel
def predict_event(mem, meta, scratch):
    """:func:`predict_step` on the input in scratch; the output goes to scratch block POUT. Returns
    its first entry (the regression head's prediction: reading it from POUT in Python costs more)."""
    out = active_outputs(scratch, meta, POUT)
    predict_step(mem, meta, scratch, vec(scratch, meta, XIN, 0), vec(scratch, meta, PRESENT, 0),
                 vec(scratch, meta, TOKIN, 0), out)
    return out[0]


@kernel
def predict_learn_event(mem, meta, scratch, y):
    """:func:`predict_event` then :func:`learn_event` on the input in scratch, in one call (the
    learn step takes the prediction's forward); returns the prediction (the regression head's).
    A prediction that is not finite is returned without learning."""
    p = predict_event(mem, meta, scratch)
    if not np.isfinite(p):
        return p  # not learned: the caller refuses the event, and the model stays as it was
    learn_event(mem, meta, scratch, y)
    return vec(scratch, meta, POUT, 0)[0]


@kernel
def _load_state(mem, meta, scratch):
    """Copy the current state (window row pos - 1) into the prediction state's row 0."""
    L = meta[LAYERS]
    hs = cube(mem, meta, HS, 0)
    cs = cube(mem, meta, CS, 0)
    ph = cube(scratch, meta, PH, 0)
    pc = cube(scratch, meta, PC, 0)
    r = meta[POS] - 1
    for l in range(L):
        ph[l, 0] = hs[l, r]
        pc[l, 0] = cs[l, r]
    meta[PREDICTED_AT] = 0  # the prediction scratch is about to hold another forward


@kernel
def _predict_from(mem, meta, scratch, x, present, tokens, src, out):
    """Forward one step from prediction-state row ``src`` into row ``1 - src``; head into ``out``
    (probabilities for the softmax head, de-normalised value for regression)."""
    L = meta[LAYERS]
    px = vec(scratch, meta, PX, 0)
    e = meta[EMBED]
    normalise_input(mem, meta, x, present, px[e:], False)
    embed_input(mem, meta, tokens, px[:e])
    ph = cube(scratch, meta, PH, 0)
    pc = cube(scratch, meta, PC, 0)
    pact = cube(scratch, meta, PACT, 0)
    paux = cube(scratch, meta, PAUX, 0)
    forward_stack(mem, meta, px, ph, pc, src, 1 - src, pact, paux, 0)
    buckets = vec(scratch, meta, PNGB, 0)
    if buckets.shape[0] > 0:
        ngram.context_buckets(vec(scratch, meta, NGHIST, 0), meta[NG_BUCKETS], buckets)
    _head_out(mem, meta, ph[L - 1, 1 - src], out, buckets)
    if meta[HEAD] == heads.SOFTMAX:
        heads.softmax_inplace(out)
    else:
        out[0] = denormalise_target(mem, meta, out[0])


@kernel
def predict_step(mem, meta, scratch, x, present, tokens, out):
    """The prediction for input ``x`` from the current state; the model is not changed."""
    _load_state(mem, meta, scratch)
    if meta[NG_ORDERS] > 0:
        _history_from_window(mem, meta, tokens[0], vec(scratch, meta, NGHIST, 0))
    _predict_from(mem, meta, scratch, x, present, tokens, 0, out)
    meta[PREDICTED_AT] = meta[N_STEPS] + 1


@kernel
def rollout(mem, meta, scratch, xs, present, tokens, level_col, diff_col, level, shrink, out):
    """Autoregressive forecast from the current state: ``out[s]`` is the forecast for step s.

    Row ``s`` of ``xs`` is the raw input of step s. The network predicts the next value, or, with
    ``diff_col >= 0``, the next change from ``level`` (the last value), scaled by ``shrink`` and
    added up. For
    s >= 1 the forecast of step s - 1 is fed back: the level into column ``level_col``, the change
    into ``diff_col``. The model is not changed.
    """
    _load_state(mem, meta, scratch)
    o = active_outputs(scratch, meta, DOUT)
    src = 0
    change = 0.0
    for s in range(xs.shape[0]):
        if s > 0:
            if level_col >= 0:
                xs[s, level_col] = level
            if diff_col >= 0:
                xs[s, diff_col] = change
        _predict_from(mem, meta, scratch, xs[s], present[s], tokens[s], src, o)
        if diff_col >= 0:
            change = shrink * o[0]
            level = level + change
        else:
            level = o[0]
        out[s] = level
        src = 1 - src


@kernel
def generate(mem, meta, scratch, x, present, tokens, slot, col_of_class, tok_of_class, uniforms, temperature,
             out_classes):
    """Sample ``len(uniforms)`` classes from the current state, feeding each sampled class back as
    the next input (softmax head only); the model is not changed.

    The input of step 0 is ``x``/``tokens`` (the last symbol seen). A sampled class ``c`` becomes
    the next input through token ``tok_of_class[c]`` in embedding ``slot``, or through the one-hot
    column ``col_of_class[c]`` of ``x`` (-1 where a class has no input of its own).
    """
    _load_state(mem, meta, scratch)
    n_orders = meta[NG_ORDERS]
    hist = vec(scratch, meta, NGHIST, 0)
    if n_orders > 0:
        _history_from_window(mem, meta, tokens[0], hist)
    O = meta[N_OUT]
    probs = active_outputs(scratch, meta, DOUT)
    inv_t = 1.0 / temperature
    src = 0
    for i in range(uniforms.shape[0]):
        _predict_from(mem, meta, scratch, x, present, tokens, src, probs)
        src = 1 - src
        total = 0.0
        for c in range(O):
            p = probs[c] ** inv_t
            probs[c] = p
            total += p
        u = uniforms[i] * total
        chosen = O - 1
        acc = 0.0
        for c in range(O):
            acc += probs[c]
            if u < acc:
                chosen = c
                break
        out_classes[i] = chosen
        if slot >= 0:
            tokens[slot] = tok_of_class[chosen]
        if n_orders > 0:  # the sampled symbol becomes the newest of the n-gram context
            for j in range(n_orders - 1, 0, -1):
                hist[j] = hist[j - 1]
            hist[0] = tokens[0]
        for c in range(O):
            if col_of_class[c] >= 0:
                x[col_of_class[c]] = 0.0
        if col_of_class[chosen] >= 0:
            x[col_of_class[chosen]] = 1.0
