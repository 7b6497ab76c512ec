"""The forward pass of the layer stack, one step, and the window buffer it writes into."""

from . import gru, heads, lstm, mingru, ngram, rnn
from ._jit import kernel
from .blocks import *  # noqa: F403 (the slots and kinds the kernels name)
from .blocks import cube, mat, vec

# the cells' dispatch codes (streamrnn/cells.py declares which cell has which)
RNN, GRU, LSTM, MINGRU = 0, 1, 2, 3


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
