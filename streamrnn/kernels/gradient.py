"""The gradient of a window's loss (back through the layer stack and the embedding) and the
optimizer step that applies it."""

import numpy as np

from . import gru, heads, linalg, lstm, mingru, optim, rnn
from ._jit import kernel
from .blocks import *  # noqa: F403 (the slots and kinds the kernels name)
from .blocks import active_outputs, cube, input_and_recurrent_weights, mat, offset, rows_of, vec
from .forward import GRU, LSTM, MINGRU, RNN, _head_out, _window_buckets
from .views import view


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
