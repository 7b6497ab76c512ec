"""The state schema as the kernels see it: the slots of ``meta`` and the blocks of ``mem`` and ``scratch``.

``meta`` starts with :data:`HEADER` slots (sizes and the counters that advance with the stream),
then holds a table with one entry per block: its offset in its array and its shape. The shapes are
written once, in ``streamrnn/layout.py``, which fills the table and checks it when it lays out a
configuration (every block ends inside its array and has the number of dimensions :data:`NDIM`
gives its kind); a kernel asks for a block by kind (and layer) and gets a view of the declared
shape. :func:`vec`, :func:`mat` and :func:`cube` raise ``IndexError`` when the kind has another
number of dimensions, so a kernel cannot take a matrix as a vector and read past it. That check
costs nothing: the kind is a constant where a kernel names it, and the comparison folds away.
The bounds are checked once, where the table is made, not on every view (a bounds check per view,
against the dimensions read from the table, made an event 20-25% slower on 32-unit models).

The blocks (``L`` layers, ``H`` hidden units, ``G = gates * H``, ``B`` window rows, ``K`` the
truncation, ``C`` the output capacity, ``I`` the dense inputs, ``X`` layer 0's inputs, that is the
embedding then the dense inputs):

=========  ========  =====================================================================
kind       array     what it holds
=========  ========  =====================================================================
WX         mem       a layer's input weights (inputs, G); its gradient at the same offset in
                     scratch, its optimizer moments at +P and +2P in mem (P parameters)
WH         mem       a layer's recurrent weights (H, G), directly after WX (one product
                     gives both gradients)
BX         mem       a layer's gate biases (G)
BH         mem       a layer's bias inside the recurrent product (H for the GRU, else 0)
WY, BY     mem       the head's weights (H, C) and biases (C)
EMB        mem       the embedding table (token capacity, embedding size), the last
                     parameter block: its rows get sparse updates
XMEAN ...  mem       running input mean, variance and count (I each); YSTAT the target's
                     count, mean and variance (3); HYPER the hyperparameters
XS, YS     mem       the window's normalised inputs (B, X) and targets (B)
HS, CS     mem       the window's hidden and cell states (L, B, H) and (L, B, H or 0)
ACT        mem       the window's gate activations (L, B, G)
AUX        mem       one more value per unit and step (L, B, H): the LSTM's tanh(c), the
                     GRU's recurrent candidate ``bh + h_prev @ wh_n``, unused by the RNN
TOK        mem       the window's input tokens (B, slots; -1: none)
NGW, NGV   mem       the n-gram table (buckets, C) and its rows' step sizes (buckets)
NGB        mem       the n-gram table rows of each window step (B, orders)
DAX, DAH   scratch   gate gradients for the input and the recurrent weights (L, K, G)
DHIN, DXB  scratch   the gradient reaching a layer's h, and its input gradient (K, H)
CARRY      scratch   a backward pass's carried gradients (2, H)
DOUT, OUT  scratch   the head's output gradient and output (C)
PX .. PAUX scratch   a prediction's input (X) and states (L, 2, H) / (L, 1, G), kept apart
                     from the window so that predicting changes nothing
DEMB ...   scratch   the embedding gradient: per step (K, e), per distinct token (K * slots, e),
                     which tokens (K * slots) and a token's row (token capacity)
XIN ...    scratch   the estimator's input buffers: XIN, PRESENT (I), TOKIN (slots), POUT (C)
NGHIST     scratch   the n-gram context of a prediction (orders); PNGB its rows (orders)
ZCAT       scratch   [input | previous state] of the window's steps, for one product
LEARNED    scratch   the last learn step's de-normalised prediction (1)
=========  ========  =====================================================================
"""

from ._jit import kernel
from .views import view

# --- meta: header slots -----------------------------------------------------------------------
CELL, LAYERS, HIDDEN, GATES, N_IN, N_OUT, TRUNCATION, ROWS, UPDATE_EVERY = range(9)
HEAD, OPTIMIZER, N_PARAMS, NORM_X, NORM_Y, CELL_WIDTH = range(9, 15)
# N_OUT classes are active out of OUT_CAP allocated; N_TOKENS embedding rows out of TOKEN_CAP.
# The embedding table is the last parameter block: parameters before N_DENSE get dense updates,
# embedding rows sparse ones (only the rows used in the window).
OUT_CAP, EMBED, SLOTS, N_TOKENS, TOKEN_CAP, N_DENSE = range(15, 21)
# counters that advance with the stream
POS, N_STEPS, N_SINCE_UPDATE, N_UPDATES, N_SKIPPED, OPT_STEP, N_TOUCHED = range(22, 29)
# N_STEPS + 1 when predict_step last ran from the current state (0: not since, or scratch was
# reused): scratch then holds that forward, which learn_step takes instead of recomputing it when
# its normalised input is the same (the prequential predict_one, learn_one pair)
PREDICTED_AT = 21
# direct n-gram connections of the softmax head (0 orders: none), see kernels/ngram.py
NG_ORDERS, NG_BUCKETS = 29, 30
HEADER = 32

# --- block kinds ------------------------------------------------------------------------------
# parameters, first in mem, in this order; the first four have one block per layer
WX, WH, BX, BH, WY, BY, EMB = range(7)
PER_LAYER = 4
MAX_LAYERS = 8
# the rest of the state
XMEAN, XVAR, XCOUNT, YSTAT, HYPER, XS, HS, CS, ACT, AUX, YS, TOK = range(7, 19)
# scratch
DAX, DAH, DHIN, DXB, CARRY, DOUT, OUT, PX, PH, PC, PACT, PAUX, DEMB, GEROWS, TOUCHED, MARK = range(19, 35)
# the estimator's input buffers live in scratch too, so a call passes three arrays, not seven
# (each array argument is unboxed on every call)
XIN, PRESENT, TOKIN, POUT = range(35, 39)
NGW, NGB, NGHIST, PNGB, NGV = range(39, 44)
ZCAT = 44
LEARNED_PRED = 45
N_KINDS = 46

# the number of dimensions of each kind's blocks (layout.py checks its shapes against it)
_NDIM = {
    WX: 2, WH: 2, BX: 1, BH: 1, WY: 2, BY: 1, EMB: 2,
    XMEAN: 1, XVAR: 1, XCOUNT: 1, YSTAT: 1, HYPER: 1, XS: 2, HS: 3, CS: 3, ACT: 3, AUX: 3, YS: 1, TOK: 2,
    DAX: 3, DAH: 3, DHIN: 2, DXB: 2, CARRY: 2, DOUT: 1, OUT: 1, PX: 1, PH: 3, PC: 3, PACT: 3, PAUX: 3,
    DEMB: 2, GEROWS: 2, TOUCHED: 1, MARK: 1, XIN: 1, PRESENT: 1, TOKIN: 1, POUT: 1,
    NGW: 2, NGB: 2, NGHIST: 1, PNGB: 1, NGV: 1, ZCAT: 2, LEARNED_PRED: 1,
}
NDIM = tuple(_NDIM[k] for k in range(N_KINDS))

# --- the block table: meta[TABLE + ENTRY * entry(kind, layer) + k] ------------------------------
# k = 0: the offset; 1: the number of dimensions; 2, 3, 4: the dimensions (unused ones 1)
TABLE = HEADER
ENTRY = 5
N_ENTRIES = PER_LAYER * MAX_LAYERS + N_KINDS - PER_LAYER
META_SIZE = TABLE + ENTRY * N_ENTRIES

# --- hyperparameters, mem[HYPER + k] ----------------------------------------------------------
LR, CLIP_NORM, BETA1, BETA2, EPS, MOMENTUM, RHO, HUBER_DELTA, X_CLIP, NG_LR = range(10)
N_HYPER = 10


@kernel
def entry(kind, layer):
    """The table slot of block ``kind`` of ``layer`` (layer 0 for the blocks not per layer)."""
    if kind < PER_LAYER:
        return TABLE + ENTRY * (kind * MAX_LAYERS + layer)
    return TABLE + ENTRY * (PER_LAYER * MAX_LAYERS + kind - PER_LAYER)


@kernel
def offset(meta, kind, layer):
    return meta[entry(kind, layer)]


@kernel
def _checked(kind, layer, ndim):
    if NDIM[kind] != ndim:
        raise IndexError("block taken with the wrong number of dimensions")
    return entry(kind, layer)


@kernel
def vec(arr, meta, kind, layer):
    """Block ``kind`` of ``layer``, a vector."""
    e = _checked(kind, layer, 1)
    return view(arr, meta[e], (meta[e + 2],))


@kernel
def mat(arr, meta, kind, layer):
    """Block ``kind`` of ``layer``, a matrix."""
    e = _checked(kind, layer, 2)
    return view(arr, meta[e], (meta[e + 2], meta[e + 3]))


@kernel
def cube(arr, meta, kind, layer):
    """Block ``kind`` of ``layer``, three-dimensional."""
    e = _checked(kind, layer, 3)
    return view(arr, meta[e], (meta[e + 2], meta[e + 3], meta[e + 4]))


@kernel
def active_outputs(arr, meta, kind):
    """The first N_OUT entries of an output block (OUT, DOUT, POUT: C allocated), the active classes."""
    return vec(arr, meta, kind, 0)[: meta[N_OUT]]


@kernel
def rows_of(arr, meta, kind, rows, cols):
    """The first ``rows * cols`` elements of work block ``kind`` as a (rows, cols) matrix: a block
    sized for the largest case and used at the size of the call (ZCAT)."""
    e = entry(kind, 0)
    o = meta[e]
    if rows * cols > meta[e + 2] * meta[e + 3] * meta[e + 4] or o < 0 or o + rows * cols > arr.shape[0]:
        raise IndexError("more rows than the block holds")
    return view(arr, o, (rows, cols))


@kernel
def input_and_recurrent_weights(arr, meta, layer):
    """A layer's WX and WH blocks as one matrix (inputs + H, G): they are adjacent, and so are
    their gradients, so one product of [x | h_prev] by the gate gradients gives both."""
    ex = entry(WX, layer)
    eh = entry(WH, layer)
    o = meta[ex]
    if meta[ex + 1] != 2 or meta[eh + 1] != 2 or meta[eh] != o + meta[ex + 2] * meta[ex + 3] \
            or meta[eh + 3] != meta[ex + 3]:
        raise IndexError("WH does not follow WX")
    rows = meta[ex + 2] + meta[eh + 2]
    if o < 0 or o + rows * meta[ex + 3] > arr.shape[0]:
        raise IndexError("block beyond the end of its array")
    return view(arr, o, (rows, meta[ex + 3]))
