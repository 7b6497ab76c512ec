"""The flat state of a model: which block lives where in ``mem``, ``meta`` and ``scratch``.

A layout is a list of blocks with shapes. :func:`allocate` builds ``meta`` and zeroed
``mem``/``scratch`` arrays for a configuration; :func:`regrow` builds the arrays for a bigger
configuration (more inputs, more class or token capacity) and copies every block of the old state
into the top-left corner of its new block, so learning goes on where it was.

Classes and embedding tokens are allocated with spare capacity (doubling), so that a growing
vocabulary costs amortised O(1) reallocations; ``meta`` says how many are active.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from . import cells
from .kernels import blocks
from .kernels import heads, optim

HEADS = {"squared": heads.SQUARED, "huber": heads.HUBER, "softmax": heads.SOFTMAX}
OPTIMIZERS = {"sgd": optim.SGD, "rmsprop": optim.RMSPROP, "adam": optim.ADAM}


@dataclasses.dataclass(frozen=True)
class Config:
    cell: str
    num_layers: int
    hidden_size: int
    n_inputs: int  # dense inputs (numbers, one-hot categories)
    n_outputs: int  # active outputs
    truncation: int
    update_every: int
    head: str
    optimizer: str
    normalize_inputs: bool
    normalize_target: bool
    out_capacity: int = 1
    embedding_size: int = 0
    slots: int = 0  # categorical features feeding the embedding
    n_tokens: int = 0  # active embedding rows
    token_capacity: int = 0
    ngram_orders: int = 0  # direct n-gram connections to the softmax (kernels/ngram.py)
    ngram_buckets: int = 0

    def __reduce__(self):
        # the values only: a model's pickle need not repeat the field names
        return Config, tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    @property
    def spec(self) -> cells.Cell:
        return cells.lookup(self.cell)

    @property
    def gate_width(self):
        return self.spec.gates * self.hidden_size

    @property
    def rows(self):
        return 2 * self.truncation + 2

    @property
    def layer0_inputs(self):
        """Layer 0 reads [embedding (embedding_size) | dense inputs (n_inputs)]: dense inputs come
        last, so that new ones append rows and the old state stays in the corner."""
        return self.n_inputs + self.embedding_size

    def same_shape(self, other: "Config") -> bool:
        """Whether both configurations have the same arrays (they may differ in active counts)."""
        return (dataclasses.replace(self, n_outputs=0, n_tokens=0)
                == dataclasses.replace(other, n_outputs=0, n_tokens=0))

    def param_blocks(self):
        H, G = self.hidden_size, self.gate_width
        found = []
        for layer in range(self.num_layers):
            n_in = self.layer0_inputs if layer == 0 else H
            found += [
                (blocks.WX, layer, (n_in, G)),
                (blocks.WH, layer, (self.spec.recurrent_rows(H), G)),
                (blocks.BX, layer, (G,)),
                (blocks.BH, layer, (self.spec.recurrent_bias_width(H),)),
            ]
        found += [(blocks.WY, 0, (H, self.out_capacity)), (blocks.BY, 0, (self.out_capacity,))]
        found += [(blocks.EMB, 0, (self.token_capacity, self.embedding_size))]  # last: sparse updates
        return found

    def state_blocks(self):
        L, H, G, B, I = self.num_layers, self.hidden_size, self.gate_width, self.rows, self.n_inputs
        cw = self.spec.cell_width(H)
        return [
            (blocks.XMEAN, 0, (I,)),
            (blocks.XVAR, 0, (I,)),
            (blocks.XCOUNT, 0, (I,)),
            (blocks.YSTAT, 0, (3,)),
            (blocks.HYPER, 0, (blocks.N_HYPER,)),
            (blocks.XS, 0, (B, self.layer0_inputs)),
            (blocks.HS, 0, (L, B, H)),
            (blocks.CS, 0, (L, B, cw)),
            (blocks.ACT, 0, (L, B, G)),
            (blocks.AUX, 0, (L, B, H)),
            (blocks.YS, 0, (B,)),
            (blocks.TOK, 0, (B, self.slots)),
            (blocks.NGW, 0, (self.ngram_buckets, self.out_capacity)),
            (blocks.NGB, 0, (B, self.ngram_orders)),
            (blocks.NGV, 0, (self.ngram_buckets,)),
        ]

    def scratch_blocks(self):
        L, H, G, K, O = self.num_layers, self.hidden_size, self.gate_width, self.truncation, self.out_capacity
        cw = self.spec.cell_width(H)
        e, S = self.embedding_size, self.slots
        return [
            (blocks.DAX, 0, (L, K, G)),
            (blocks.DAH, 0, (L, K, G)),
            (blocks.DHIN, 0, (K, H)),
            (blocks.DXB, 0, (K, H)),
            (blocks.CARRY, 0, (2, H)),
            (blocks.DOUT, 0, (O,)),
            (blocks.OUT, 0, (O,)),
            (blocks.PX, 0, (self.layer0_inputs,)),
            (blocks.PH, 0, (L, 2, H)),
            (blocks.PC, 0, (L, 2, cw)),
            (blocks.PACT, 0, (L, 1, G)),
            (blocks.PAUX, 0, (L, 1, H)),
            (blocks.DEMB, 0, (K, e)),
            (blocks.GEROWS, 0, (K * S, e)),
            (blocks.TOUCHED, 0, (K * S,)),
            (blocks.MARK, 0, (self.token_capacity,)),
            (blocks.XIN, 0, (self.n_inputs,)),
            (blocks.PRESENT, 0, (self.n_inputs,)),
            (blocks.TOKIN, 0, (S,)),
            (blocks.POUT, 0, (O,)),
            (blocks.NGHIST, 0, (self.ngram_orders,)),
            (blocks.PNGB, 0, (self.ngram_orders,)),
            (blocks.ZCAT, 0, (K, max(self.layer0_inputs, H) + H)),
            (blocks.LEARNED_PRED, 0, (1,)),
        ]


def _size(shape):
    return math.prod(shape)  # np.prod is far slower a call, and restoring 10,000 models calls this 1M times


def _line_up(offset):
    """``offset`` rounded up to a multiple of 16 elements, so that a state or scratch block starts
    on a cache line of the (aligned, see :func:`_zeros`) array, and so do its rows when they are
    multiples of 16 long (the gate rows of a window, 4 * hidden, usually are). The parameter blocks
    stay packed: the optimizer takes them as one vector. (The measurement: docs/benchmarks.md,
    "State layout".)"""
    return -(-offset // 16) * 16


def _entry(kind, layer):
    """The table slot of a block: the kernels' own function, run as Python (a jitted call from
    Python costs a dispatch), after refusing a layer for a block that has none."""
    if kind >= blocks.PER_LAYER and layer != 0:
        raise ValueError(f"block kind {kind} has no layers")
    return blocks.entry.py_func(kind, layer)


def _set(meta, kind, layer, offset, shape):
    """Enter block ``kind`` of ``layer`` in the table: its offset and its shape (kernels/blocks.py)."""
    e = _entry(kind, layer)
    meta[e] = offset
    meta[e + 1] = len(shape)
    meta[e + 2 : e + 5] = tuple(shape) + (1,) * (3 - len(shape))


def offset(meta, kind, layer=0):
    """Where block ``kind`` of ``layer`` starts in its array."""
    return int(meta[_entry(kind, layer)])


def shape(meta, kind, layer=0):
    """The declared shape of block ``kind`` of ``layer``."""
    e = _entry(kind, layer)
    return tuple(int(d) for d in meta[e + 2 : e + 2 + int(meta[e + 1])])


def allocate(cfg: Config, dtype=np.float64):
    """Return ``(meta, mem, scratch)`` for ``cfg``, all blocks zero."""
    meta, mem_size, scratch_size = _layout(cfg)
    meta = meta.copy()
    mem = _zeros(mem_size, dtype)
    scratch = _zeros(scratch_size, dtype)
    block(mem, meta, blocks.TOK)[:] = -1.0
    return meta, mem, scratch


_ALIGN = 64  # bytes: a cache line


def _zeros(n, dtype):
    """``np.zeros(n, dtype)`` starting on a 64-byte boundary (a cache line; numpy aligns to 16).

    The kernels' vector loads and stores are 32 bytes wide; from an array that starts 16 bytes
    past a boundary, every other one straddles two cache lines (the measurement:
    docs/benchmarks.md, "State layout").
    """
    itemsize = np.dtype(dtype).itemsize
    buf = np.zeros(n + _ALIGN // itemsize, dtype=dtype)
    skip = (-buf.ctypes.data % _ALIGN) // itemsize
    return buf[skip : skip + n]


@functools.lru_cache(maxsize=256)
def _layout(cfg: Config):
    """``(meta, mem size, scratch size)`` of a configuration (cached: restoring many per-key
    models of one template lays out the same configuration again and again)."""
    if cfg.num_layers > blocks.MAX_LAYERS:
        raise ValueError(f"num_layers must be at most {blocks.MAX_LAYERS}")
    meta = np.zeros(blocks.META_SIZE, dtype=np.int64)
    off = 0
    n_dense = 0
    for kind, layer, shape in cfg.param_blocks():
        if kind == blocks.EMB:
            n_dense = off
        _set(meta, kind, layer, off, shape)
        off += _size(shape)
    n_params = off
    off = 3 * n_params  # parameters, then the optimizer's two moment vectors mirroring them
    for kind, layer, shape in cfg.state_blocks():
        off = _line_up(off)
        _set(meta, kind, layer, off, shape)
        off += _size(shape)
    mem_size = off
    off = n_dense  # the gradient of the dense parameters mirrors them at the start of scratch
    for kind, layer, shape in cfg.scratch_blocks():
        off = _line_up(off)
        _set(meta, kind, layer, off, shape)
        off += _size(shape)
    scratch_size = off

    meta[blocks.CELL] = cfg.spec.code
    meta[blocks.LAYERS] = cfg.num_layers
    meta[blocks.HIDDEN] = cfg.hidden_size
    meta[blocks.GATES] = cfg.spec.gates
    meta[blocks.N_IN] = cfg.n_inputs
    meta[blocks.N_OUT] = cfg.n_outputs
    meta[blocks.OUT_CAP] = cfg.out_capacity
    meta[blocks.TRUNCATION] = cfg.truncation
    meta[blocks.ROWS] = cfg.rows
    meta[blocks.UPDATE_EVERY] = cfg.update_every
    meta[blocks.HEAD] = HEADS[cfg.head]
    meta[blocks.OPTIMIZER] = OPTIMIZERS[cfg.optimizer]
    meta[blocks.N_PARAMS] = n_params
    meta[blocks.N_DENSE] = n_dense
    meta[blocks.NORM_X] = int(cfg.normalize_inputs)
    meta[blocks.NORM_Y] = int(cfg.normalize_target)
    meta[blocks.CELL_WIDTH] = cfg.spec.cell_width(cfg.hidden_size)
    meta[blocks.EMBED] = cfg.embedding_size
    meta[blocks.SLOTS] = cfg.slots
    meta[blocks.N_TOKENS] = cfg.n_tokens
    meta[blocks.TOKEN_CAP] = cfg.token_capacity
    meta[blocks.NG_ORDERS] = cfg.ngram_orders
    meta[blocks.NG_BUCKETS] = cfg.ngram_buckets
    meta[blocks.POS] = 1  # row 0 is the initial (zero) state
    check_table(cfg, meta, mem_size, scratch_size)
    meta.setflags(write=False)
    return meta, mem_size, scratch_size


def check_table(cfg: Config, meta, mem_size, scratch_size):
    """Raise ``IndexError`` unless every block of ``cfg`` has, in ``meta``'s table, the number of
    dimensions its kind has (``blocks.NDIM``), and the blocks of each array lie inside it without
    overlapping. The kernels take views by the table without checking bounds (kernels/blocks.py):
    this is where the bounds are checked.

    mem holds the parameters, their two optimizer moments (``3 * N_PARAMS`` values), then the state
    blocks; scratch holds the gradient of the dense parameters (all but the embedding) at the
    parameters' offsets, then the scratch blocks."""
    n_params = int(meta[blocks.N_PARAMS])
    params = cfg.param_blocks()
    dense = [b for b in params if b[0] != blocks.EMB]
    moments = [(None, 0, (2 * n_params,), n_params)]  # not in the table: right after the parameters
    for found, size in ((params + moments + cfg.state_blocks(), mem_size), (dense + cfg.scratch_blocks(), scratch_size)):
        spans = []
        for kind, layer, declared, *at in found:
            if kind is None:
                spans.append((at[0], at[0] + declared[0], "the optimizer moments"))
                continue
            e = _entry(kind, layer)
            ndim = int(meta[e + 1])
            if ndim != blocks.NDIM[kind] or ndim != len(declared):
                raise IndexError(f"block kind {kind} has {ndim} dimensions, its kind {blocks.NDIM[kind]}")
            o = int(meta[e])
            spans.append((o, o + _size(shape(meta, kind, layer)), f"block kind {kind} of layer {layer}"))
        spans.sort()
        end = 0
        for start, stop, name in spans:
            if start < end or stop > size:
                raise IndexError(f"{name} overlaps another block or ends beyond its array")
            end = max(end, stop)


def block(arr, meta, kind, layer=0, base=0):
    """A view of block ``kind`` of ``layer``, of its declared shape, in ``arr`` (``mem`` or
    ``scratch``; or a mirror at ``base``, e.g. the Adam moments)."""
    e = _entry(kind, layer)
    o = base + int(meta[e])
    dims = tuple(int(d) for d in meta[e + 2 : e + 2 + int(meta[e + 1])])
    return arr[o : o + _size(dims)].reshape(dims)


def regrow(old_cfg: Config, meta, mem, new_cfg: Config):
    """State for ``new_cfg`` (which may only be larger) holding the old state in its corner."""
    new_meta, new_mem, new_scratch = allocate(new_cfg, mem.dtype)
    P_old, P_new = int(meta[blocks.N_PARAMS]), int(new_meta[blocks.N_PARAMS])
    for kind, layer, old_shape in old_cfg.param_blocks():
        corner = tuple(slice(0, s) for s in old_shape)
        for mirror in range(3):  # parameters, first and second optimizer moments
            block(new_mem, new_meta, kind, layer, mirror * P_new)[corner] = block(mem, meta, kind, layer, mirror * P_old)
    for kind, layer, old_shape in old_cfg.state_blocks():
        corner = tuple(slice(0, s) for s in old_shape)
        block(new_mem, new_meta, kind, layer)[corner] = block(mem, meta, kind, layer)
    new_meta[blocks.POS : blocks.N_TOUCHED + 1] = meta[blocks.POS : blocks.N_TOUCHED + 1]
    return new_meta, new_mem, new_scratch


# Window blocks: only rows pos - truncation .. pos - 1 are ever read again (the next backward pass,
# the state, the n-gram context; see live_rows), the others are stale. Which of those a stored model
# keeps, and how the others are rebuilt, is the cell's to say (cells.Cell.stored_rows, .rebuild).
_WINDOW = {blocks.XS: 0, blocks.YS: 0, blocks.TOK: 0, blocks.NGB: 0, blocks.HS: 1, blocks.CS: 1, blocks.ACT: 1, blocks.AUX: 1}  # kind -> row axis


def live_rows(meta):
    """``(state, end)``: rows ``state + 1 .. end - 1`` are the steps the next gradient can reach
    (it runs back ``truncation`` steps from row ``end``, the next one written), row ``state`` the
    state before them."""
    pos = int(meta[blocks.POS])
    return max(pos - int(meta[blocks.TRUNCATION]), 0), pos


def _live_blocks(cfg: Config, meta, mem):
    """Views of the state blocks of ``mem`` in layout order, window blocks cut to the rows a pickle
    keeps."""
    lo, hi = live_rows(meta)
    for kind, layer, _ in cfg.state_blocks():
        b = block(mem, meta, kind, layer)
        axis = _WINDOW.get(kind)
        if axis is not None:
            first, end = cfg.spec.stored_rows(kind, lo, hi)
            b = b[first:end] if axis == 0 else b[:, first:end]
        yield b


def _restore_window(cfg: Config, meta, mem):
    """Recompute what the cell's ``stored_rows`` leaves out of the steps' rows, bit for bit."""
    lo, hi = live_rows(meta)
    steps = slice(min(lo + 1, hi), hi)
    hs, cs, act, aux = (block(mem, meta, kind) for kind in (blocks.HS, blocks.CS, blocks.ACT, blocks.AUX))
    cfg.spec.rebuild(hs, cs, act, aux, steps)


def _stored_size(cfg: Config, lo, hi):
    """Elements of the state blocks a pickle keeps, given the live rows ``(lo, hi)``."""
    n = 0
    for kind, _, shape in cfg.state_blocks():
        axis = _WINDOW.get(kind)
        if axis is not None:
            first, end = cfg.spec.stored_rows(kind, lo, hi)
            shape = shape[:axis] + (end - first,) + shape[axis + 1:]
        n += _size(shape)
    return n


# header slots that advance with the stream (or count active classes and tokens); the others
# follow from the configuration
_COUNTERS = frozenset((blocks.POS, blocks.N_STEPS, blocks.N_SINCE_UPDATE, blocks.N_UPDATES, blocks.N_SKIPPED, blocks.OPT_STEP, blocks.N_TOUCHED,
                       blocks.PREDICTED_AT, blocks.N_OUT, blocks.N_TOKENS))


def check_packed(cfg: Config, header, values):
    """Raise ``ValueError`` unless ``(header, values)`` is a state :func:`pack` could have written for
    ``cfg``: the header slots that follow from the configuration equal it, the counters are in the
    ranges the kernels keep them in, the values have the size the counters imply and are finite.
    (The kernels index arrays by these numbers without bounds checks: nothing read from outside may
    reach them unchecked.)"""
    expected = _layout(cfg)[0]
    if header.shape != (blocks.HEADER,) or values.ndim != 1:
        raise ValueError("state arrays have the wrong shape")
    for i in range(blocks.HEADER):
        if i not in _COUNTERS and header[i] != expected[i]:
            raise ValueError(f"state header slot {i} is {int(header[i])}, the configuration gives {int(expected[i])}")
    pos, steps, K, B = int(header[blocks.POS]), int(header[blocks.N_STEPS]), cfg.truncation, cfg.rows
    if steps < 0 or (pos != steps + 1 if steps < B - 1 else not K + 1 <= pos <= B):
        raise ValueError(f"window position {pos} does not follow from {steps} steps")
    if not 0 <= header[blocks.N_SINCE_UPDATE] < cfg.update_every:
        raise ValueError("events since the last update out of range")
    if header[blocks.N_TOUCHED] != 0 or header[blocks.PREDICTED_AT] != 0:
        raise ValueError("scratch counters must be 0 in a saved state")
    if header[blocks.N_OUT] != cfg.n_outputs or header[blocks.N_TOKENS] != cfg.n_tokens:
        raise ValueError("active outputs or tokens differ from the configuration")
    if min(header[blocks.N_UPDATES], header[blocks.N_SKIPPED], header[blocks.OPT_STEP]) < 0:
        raise ValueError("negative update counters")
    lo, hi = max(pos - K, 0), pos
    size = 3 * int(expected[blocks.N_PARAMS]) + _stored_size(cfg, lo, hi)
    if values.size != size:
        raise ValueError(f"state holds {values.size} values, its configuration {size}")
    if not np.isfinite(values).all():
        raise ValueError("state holds non-finite values")


def check_indices(cfg: Config, meta, mem):
    """Raise ``ValueError`` unless the blocks that hold indices (tokens of the window, n-gram rows,
    class targets) hold valid ones: the kernels use them to index other blocks."""
    tok = block(mem, meta, blocks.TOK)
    if tok.size and not (np.all(tok == np.floor(tok)) and tok.min() >= -1 and tok.max() < cfg.n_tokens):
        raise ValueError("window tokens out of range")
    ngb = block(mem, meta, blocks.NGB)
    if ngb.size and not (np.all(ngb == np.floor(ngb)) and ngb.min() >= 0 and ngb.max() < cfg.ngram_buckets):
        raise ValueError("n-gram rows out of range")
    if cfg.head == "softmax":
        ys = block(mem, meta, blocks.YS)
        if not (np.all(ys == np.floor(ys)) and ys.min() >= 0 and ys.max() < max(cfg.n_outputs, 1)):
            raise ValueError("window class targets out of range")


def pack(cfg: Config, meta, mem):
    """The model's state without what is never read again or can be recomputed exactly:
    ``(header, values)`` where the header is meta's header slots (the block offsets follow from
    ``cfg``) and values hold the parameters, optimizer moments and state blocks, window blocks cut
    to the rows the next gradient can reach (see ``cells.Cell.stored_rows``). Of an LSTM-32 forecaster's
    window, about a fifth is stored."""
    parts = [mem[: 3 * int(meta[blocks.N_PARAMS])]]
    parts += [b.ravel() for b in _live_blocks(cfg, meta, mem)]
    header = meta[: blocks.HEADER].copy()
    header[blocks.PREDICTED_AT] = 0  # the prediction scratch is not saved
    return header, np.concatenate(parts)


def unpack(cfg: Config, header, values, dtype):
    """``(meta, mem, scratch)`` from :func:`pack`'s output; the stale window rows come back as zeros."""
    meta, mem, scratch = allocate(cfg, dtype)
    meta[: blocks.HEADER] = header
    at = 3 * int(meta[blocks.N_PARAMS])
    mem[:at] = values[:at]
    for b in _live_blocks(cfg, meta, mem):
        b[...] = values[at : at + b.size].reshape(b.shape)
        at += b.size
    if at != values.size:
        raise ValueError("packed model state does not match its configuration")
    _restore_window(cfg, meta, mem)
    return meta, mem, scratch
