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

from . import heads, ngram
from ._jit import kernel
from .blocks import *  # noqa: F403 (the slots and kinds the kernels name)
from .blocks import active_outputs, cube, mat, vec
from .forward import _head_out, _history_from_window, _slide, _window_buckets, forward_stack
from .gradient import apply_gradient, compute_gradient
from .normalise import denormalise_target, embed_input, normalise_input, normalise_target


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
