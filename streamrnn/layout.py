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
from .kernels import engine as E
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
        blocks = []
        for layer in range(self.num_layers):
            n_in = self.layer0_inputs if layer == 0 else H
            blocks += [
                (E.WX, layer, (n_in, G)),
                (E.WH, layer, (H, G)),
                (E.BX, layer, (G,)),
                (E.BH, layer, (self.spec.recurrent_bias_width(H),)),
            ]
        blocks += [(E.WY, 0, (H, self.out_capacity)), (E.BY, 0, (self.out_capacity,))]
        blocks += [(E.EMB, 0, (self.token_capacity, self.embedding_size))]  # last: sparse updates
        return blocks

    def state_blocks(self):
        L, H, G, B, I = self.num_layers, self.hidden_size, self.gate_width, self.rows, self.n_inputs
        cw = self.spec.cell_width(H)
        return [
            (E.XMEAN, 0, (I,)),
            (E.XVAR, 0, (I,)),
            (E.XCOUNT, 0, (I,)),
            (E.YSTAT, 0, (3,)),
            (E.HYPER, 0, (E.N_HYPER,)),
            (E.XS, 0, (B, self.layer0_inputs)),
            (E.HS, 0, (L, B, H)),
            (E.CS, 0, (L, B, cw)),
            (E.ACT, 0, (L, B, G)),
            (E.AUX, 0, (L, B, H)),
            (E.YS, 0, (B,)),
            (E.TOK, 0, (B, self.slots)),
            (E.NGW, 0, (self.ngram_buckets, self.out_capacity)),
            (E.NGB, 0, (B, self.ngram_orders)),
            (E.NGV, 0, (self.ngram_buckets,)),
        ]

    def scratch_blocks(self):
        L, H, G, K, O = self.num_layers, self.hidden_size, self.gate_width, self.truncation, self.out_capacity
        cw = self.spec.cell_width(H)
        e, S = self.embedding_size, self.slots
        return [
            (E.DAX, 0, (L, K, G)),
            (E.DAH, 0, (L, K, G)),
            (E.DHIN, 0, (K, H)),
            (E.DXB, 0, (K, H)),
            (E.CARRY, 0, (2, H)),
            (E.DOUT, 0, (O,)),
            (E.OUT, 0, (O,)),
            (E.PX, 0, (self.layer0_inputs,)),
            (E.PH, 0, (L, 2, H)),
            (E.PC, 0, (L, 2, cw)),
            (E.PACT, 0, (L, 1, G)),
            (E.PAUX, 0, (L, 1, H)),
            (E.DEMB, 0, (K, e)),
            (E.GEROWS, 0, (K * S, e)),
            (E.TOUCHED, 0, (K * S,)),
            (E.MARK, 0, (self.token_capacity,)),
            (E.XIN, 0, (self.n_inputs,)),
            (E.PRESENT, 0, (self.n_inputs,)),
            (E.TOKIN, 0, (S,)),
            (E.POUT, 0, (O,)),
            (E.NGHIST, 0, (self.ngram_orders,)),
            (E.PNGB, 0, (self.ngram_orders,)),
            (E.ZCAT, 0, (K, max(self.layer0_inputs, H) + H)),
            (E.LEARNED_PRED, 0, (1,)),
        ]


def _size(shape):
    return math.prod(shape)  # np.prod costs a microsecond a call: restoring 10,000 models calls it 1M times


def _line_up(offset):
    """``offset`` rounded up to a multiple of 16 elements, so that a state or scratch block starts
    on a cache line of the (aligned, see :func:`_zeros`) array, and so do its rows when they are
    multiples of 16 long (the gate rows of a window, 4 * hidden, usually are). The parameter blocks
    stay packed: the optimizer takes them as one vector. Measured side by side in one process,
    four LSTM-32 models each: 9.0-9.3 us per event with the blocks lined up, 9.2-10.3 without."""
    return -(-offset // 16) * 16


def _set(meta, kind, layer, offset):
    meta[E.OFFSETS + kind * E.MAX_LAYERS + layer] = offset


def allocate(cfg: Config, dtype=np.float64):
    """Return ``(meta, mem, scratch)`` for ``cfg``, all blocks zero."""
    meta, mem_size, scratch_size = _layout(cfg)
    meta = meta.copy()
    mem = _zeros(mem_size, dtype)
    scratch = _zeros(scratch_size, dtype)
    block(mem, meta, E.TOK, 0, (cfg.rows, cfg.slots))[:] = -1.0
    return meta, mem, scratch


_ALIGN = 64  # bytes: a cache line


def _zeros(n, dtype):
    """``np.zeros(n, dtype)`` starting on a 64-byte boundary (a cache line; numpy aligns to 16).

    The kernels' vector loads and stores are 32 bytes wide; from an array that starts 16 bytes
    past a boundary, every other one straddles two cache lines. Measured on eight LSTM-32 models
    in one process: 9.9-10.4 us per event with the state aligned so, 10.8-11.3 with it 16 bytes
    past, and 9.9-11.1 as numpy happened to place it.
    """
    itemsize = np.dtype(dtype).itemsize
    buf = np.zeros(n + _ALIGN // itemsize, dtype=dtype)
    skip = (-buf.ctypes.data % _ALIGN) // itemsize
    return buf[skip : skip + n]


@functools.lru_cache(maxsize=256)
def _layout(cfg: Config):
    """``(meta, mem size, scratch size)`` of a configuration (cached: restoring many per-key
    models of one template lays out the same configuration again and again)."""
    if cfg.num_layers > E.MAX_LAYERS:
        raise ValueError(f"num_layers must be at most {E.MAX_LAYERS}")
    meta = np.zeros(E.OFFSETS + E.N_KINDS * E.MAX_LAYERS, dtype=np.int64)
    off = 0
    n_dense = 0
    for kind, layer, shape in cfg.param_blocks():
        if kind == E.EMB:
            n_dense = off
        _set(meta, kind, layer, off)
        off += _size(shape)
    n_params = off
    off = 3 * n_params  # parameters, then the optimizer's two moment vectors mirroring them
    for kind, layer, shape in cfg.state_blocks():
        off = _line_up(off)
        _set(meta, kind, layer, off)
        off += _size(shape)
    mem_size = off
    off = n_dense  # the gradient of the dense parameters mirrors them at the start of scratch
    for kind, layer, shape in cfg.scratch_blocks():
        off = _line_up(off)
        _set(meta, kind, layer, off)
        off += _size(shape)
    scratch_size = off

    meta[E.CELL] = cfg.spec.code
    meta[E.LAYERS] = cfg.num_layers
    meta[E.HIDDEN] = cfg.hidden_size
    meta[E.GATES] = cfg.spec.gates
    meta[E.N_IN] = cfg.n_inputs
    meta[E.N_OUT] = cfg.n_outputs
    meta[E.OUT_CAP] = cfg.out_capacity
    meta[E.TRUNCATION] = cfg.truncation
    meta[E.ROWS] = cfg.rows
    meta[E.UPDATE_EVERY] = cfg.update_every
    meta[E.HEAD] = HEADS[cfg.head]
    meta[E.OPTIMIZER] = OPTIMIZERS[cfg.optimizer]
    meta[E.N_PARAMS] = n_params
    meta[E.N_DENSE] = n_dense
    meta[E.NORM_X] = int(cfg.normalize_inputs)
    meta[E.NORM_Y] = int(cfg.normalize_target)
    meta[E.CELL_WIDTH] = cfg.spec.cell_width(cfg.hidden_size)
    meta[E.EMBED] = cfg.embedding_size
    meta[E.SLOTS] = cfg.slots
    meta[E.N_TOKENS] = cfg.n_tokens
    meta[E.TOKEN_CAP] = cfg.token_capacity
    meta[E.NG_ORDERS] = cfg.ngram_orders
    meta[E.NG_BUCKETS] = cfg.ngram_buckets
    meta[E.POS] = 1  # row 0 is the initial (zero) state
    meta.setflags(write=False)
    return meta, mem_size, scratch_size


def block(arr, meta, kind, layer, shape, base=0):
    """A view of one block of ``mem`` (or of a mirror at ``base``, e.g. the Adam moments)."""
    o = base + int(meta[E.OFFSETS + kind * E.MAX_LAYERS + layer])
    return arr[o : o + _size(shape)].reshape(shape)


def regrow(old_cfg: Config, meta, mem, new_cfg: Config):
    """State for ``new_cfg`` (which may only be larger) holding the old state in its corner."""
    new_meta, new_mem, new_scratch = allocate(new_cfg, mem.dtype)
    P_old, P_new = int(meta[E.N_PARAMS]), int(new_meta[E.N_PARAMS])
    for (kind, layer, old_shape), (_, _, new_shape) in zip(old_cfg.param_blocks(), new_cfg.param_blocks()):
        corner = tuple(slice(0, s) for s in old_shape)
        for mirror in range(3):  # parameters, first and second optimizer moments
            block(new_mem, new_meta, kind, layer, new_shape, mirror * P_new)[corner] = block(
                mem, meta, kind, layer, old_shape, mirror * P_old
            )
    for (kind, layer, old_shape), (_, _, new_shape) in zip(old_cfg.state_blocks(), new_cfg.state_blocks()):
        corner = tuple(slice(0, s) for s in old_shape)
        block(new_mem, new_meta, kind, layer, new_shape)[corner] = block(mem, meta, kind, layer, old_shape)
    new_meta[E.POS : E.N_TOUCHED + 1] = meta[E.POS : E.N_TOUCHED + 1]
    return new_meta, new_mem, new_scratch


# Window blocks: only rows pos - truncation .. pos - 1 are ever read again (the next backward pass,
# the state, the n-gram context; see live_rows), the others are stale. Which of those a stored model
# keeps, and how the others are rebuilt, is the cell's to say (cells.Cell.stored_rows, .rebuild).
_WINDOW = {E.XS: 0, E.YS: 0, E.TOK: 0, E.NGB: 0, E.HS: 1, E.CS: 1, E.ACT: 1, E.AUX: 1}  # kind -> row axis


def live_rows(meta):
    """``(state, end)``: rows ``state + 1 .. end - 1`` are the steps the next gradient can reach
    (it runs back ``truncation`` steps from row ``end``, the next one written), row ``state`` the
    state before them."""
    pos = int(meta[E.POS])
    return max(pos - int(meta[E.TRUNCATION]), 0), pos


def _live_blocks(cfg: Config, meta, mem):
    """Views of the state blocks of ``mem`` in layout order, window blocks cut to the rows a pickle
    keeps."""
    lo, hi = live_rows(meta)
    for kind, layer, shape in cfg.state_blocks():
        b = block(mem, meta, kind, layer, shape)
        axis = _WINDOW.get(kind)
        if axis is not None:
            first, end = cfg.spec.stored_rows(kind, lo, hi)
            b = b[first:end] if axis == 0 else b[:, first:end]
        yield b


def _restore_window(cfg: Config, meta, mem):
    """Recompute what the cell's ``stored_rows`` leaves out of the steps' rows, bit for bit."""
    lo, hi = live_rows(meta)
    steps = slice(min(lo + 1, hi), hi)
    shapes = {kind: shape for kind, _, shape in cfg.state_blocks()}
    hs, cs, act, aux = (block(mem, meta, kind, 0, shapes[kind]) for kind in (E.HS, E.CS, E.ACT, E.AUX))
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
_COUNTERS = frozenset((E.POS, E.N_STEPS, E.N_SINCE_UPDATE, E.N_UPDATES, E.N_SKIPPED, E.OPT_STEP, E.N_TOUCHED,
                       E.PREDICTED_AT, E.N_OUT, E.N_TOKENS))


def check_packed(cfg: Config, header, values):
    """Raise ``ValueError`` unless ``(header, values)`` is a state :func:`pack` could have written for
    ``cfg``: the header slots that follow from the configuration equal it, the counters are in the
    ranges the kernels keep them in, the values have the size the counters imply and are finite.
    (The kernels index arrays by these numbers without bounds checks: nothing read from outside may
    reach them unchecked.)"""
    expected = _layout(cfg)[0]
    if header.shape != (E.OFFSETS,) or values.ndim != 1:
        raise ValueError("state arrays have the wrong shape")
    for i in range(E.OFFSETS):
        if i not in _COUNTERS and header[i] != expected[i]:
            raise ValueError(f"state header slot {i} is {int(header[i])}, the configuration gives {int(expected[i])}")
    pos, steps, K, B = int(header[E.POS]), int(header[E.N_STEPS]), cfg.truncation, cfg.rows
    if steps < 0 or (pos != steps + 1 if steps < B - 1 else not K + 1 <= pos <= B):
        raise ValueError(f"window position {pos} does not follow from {steps} steps")
    if not 0 <= header[E.N_SINCE_UPDATE] < cfg.update_every:
        raise ValueError("events since the last update out of range")
    if header[E.N_TOUCHED] != 0 or header[E.PREDICTED_AT] != 0:
        raise ValueError("scratch counters must be 0 in a saved state")
    if header[E.N_OUT] != cfg.n_outputs or header[E.N_TOKENS] != cfg.n_tokens:
        raise ValueError("active outputs or tokens differ from the configuration")
    if min(header[E.N_UPDATES], header[E.N_SKIPPED], header[E.OPT_STEP]) < 0:
        raise ValueError("negative update counters")
    lo, hi = max(pos - K, 0), pos
    size = 3 * int(expected[E.N_PARAMS]) + _stored_size(cfg, lo, hi)
    if values.size != size:
        raise ValueError(f"state holds {values.size} values, its configuration {size}")
    if not np.isfinite(values).all():
        raise ValueError("state holds non-finite values")


def check_indices(cfg: Config, meta, mem):
    """Raise ``ValueError`` unless the blocks that hold indices (tokens of the window, n-gram rows,
    class targets) hold valid ones: the kernels use them to index other blocks."""
    tok = block(mem, meta, E.TOK, 0, (cfg.rows, cfg.slots))
    if tok.size and not (np.all(tok == np.floor(tok)) and tok.min() >= -1 and tok.max() < cfg.n_tokens):
        raise ValueError("window tokens out of range")
    ngb = block(mem, meta, E.NGB, 0, (cfg.rows, cfg.ngram_orders))
    if ngb.size and not (np.all(ngb == np.floor(ngb)) and ngb.min() >= 0 and ngb.max() < cfg.ngram_buckets):
        raise ValueError("n-gram rows out of range")
    if cfg.head == "softmax":
        ys = block(mem, meta, E.YS, 0, (cfg.rows,))
        if not (np.all(ys == np.floor(ys)) and ys.min() >= 0 and ys.max() < max(cfg.n_outputs, 1)):
            raise ValueError("window class targets out of range")


def pack(cfg: Config, meta, mem):
    """The model's state without what is never read again or can be recomputed exactly:
    ``(header, values)`` where the header is meta's header slots (the block offsets follow from
    ``cfg``) and values hold the parameters, optimizer moments and state blocks, window blocks cut
    to the rows the next gradient can reach (see ``cells.Cell.stored_rows``). Of an LSTM-32 forecaster's
    window, about a fifth is stored."""
    parts = [mem[: 3 * int(meta[E.N_PARAMS])]]
    parts += [b.ravel() for b in _live_blocks(cfg, meta, mem)]
    header = meta[: E.OFFSETS].copy()
    header[E.PREDICTED_AT] = 0  # the prediction scratch is not saved
    return header, np.concatenate(parts)


def unpack(cfg: Config, header, values, dtype):
    """``(meta, mem, scratch)`` from :func:`pack`'s output; the stale window rows come back as zeros."""
    meta, mem, scratch = allocate(cfg, dtype)
    meta[: E.OFFSETS] = header
    at = 3 * int(meta[E.N_PARAMS])
    mem[:at] = values[:at]
    for b in _live_blocks(cfg, meta, mem):
        b[...] = values[at : at + b.size].reshape(b.shape)
        at += b.size
    if at != values.size:
        raise ValueError("packed model state does not match its configuration")
    _restore_window(cfg, meta, mem)
    return meta, mem, scratch
