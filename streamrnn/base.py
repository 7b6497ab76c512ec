"""The engine shared by every streamrnn estimator: River dicts in, flat kernel state inside."""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import types

import numpy as np

from . import cells, layout
from .encoder import MAX_ABS, InputEncoder, check_number
from .errors import BadInput
from .kernels import blocks
from .kernels import engine as E
from .kernels._jit import entry_point

_DTYPES = {"float64": np.float64, "float32": np.float32}

class RecurrentEstimator:
    """Mixin holding the recurrent network, its optimizer and its input/target normalisation.

    The subclass (a River regressor, classifier or forecaster) decides what the target is and how
    the prediction is read. Everything that learning changes lives in two arrays, ``_meta`` and
    ``_mem`` (see :mod:`streamrnn.layout`), plus the map from feature names to input columns.
    """

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 32,
        num_layers: int = 1,
        truncation: int = 16,
        update_every: int = 1,
        optimizer: str = "adam",
        lr: float = 3e-3,
        clip_norm: float = 1.0,
        loss: str = "squared",
        huber_delta: float = 1.0,
        normalize: bool = True,
        embedding_size: int | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.truncation = truncation
        self.update_every = update_every
        self.optimizer = optimizer
        self.lr = lr
        self.clip_norm = clip_norm
        self.loss = loss
        self.huber_delta = huber_delta
        self.normalize = normalize
        self.embedding_size = embedding_size
        self.dtype = dtype
        self.seed = seed
        self._check_params()
        self._rng = np.random.default_rng(seed)
        self._features: dict = {}  # feature name (or (name, category)) -> dense input column
        self._categorical: list[bool] = []
        self._slots: dict = {}  # categorical feature name -> embedding slot
        self._tokens_index: dict = {}  # (name, category) -> embedding row
        self._n_outputs = 1
        self._cfg: layout.Config | None = None
        self._meta = None
        self._mem = None
        self._scratch = None
        self._encoder: InputEncoder | None = None  # dicts to the input buffers (rebuilt with them)
        self._outbuf = None

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        cells.lookup(self.cell)  # a ValueError naming the known cells
        if self.optimizer not in layout.OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(layout.OPTIMIZERS)}, got {self.optimizer!r}")
        if self.loss not in ("squared", "huber"):
            raise ValueError(f"loss must be 'squared' or 'huber', got {self.loss!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        for name in ("hidden_size", "num_layers", "truncation", "update_every"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.num_layers > blocks.MAX_LAYERS:
            raise ValueError(f"num_layers must be at most {blocks.MAX_LAYERS}")
        if self.update_every > self.truncation:
            raise ValueError("update_every must not exceed truncation: every loss must fall in the window")
        if not (self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.embedding_size is not None and (
                not isinstance(self.embedding_size, numbers.Integral) or self.embedding_size < 1):
            raise ValueError(f"embedding_size must be None or a positive integer, got {self.embedding_size!r}")

    @property
    def _is_stochastic(self):
        return True

    def _head(self):
        return self.loss

    def _config(self, n_inputs, n_outputs, out_capacity, slots, n_tokens, token_capacity):
        ngram_orders, ngram_buckets, _ = self._ngram()
        return layout.Config(
            cell=self.cell,
            num_layers=self.num_layers,
            hidden_size=self.hidden_size,
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            truncation=self.truncation,
            update_every=self.update_every,
            head=self._head(),
            optimizer=self.optimizer,
            normalize_inputs=self.normalize,
            normalize_target=self.normalize,
            out_capacity=out_capacity,
            embedding_size=self.embedding_size or 0,
            slots=slots,
            n_tokens=n_tokens,
            token_capacity=token_capacity,
            ngram_orders=ngram_orders,
            ngram_buckets=ngram_buckets,
        )

    def _ngram(self):
        """(orders, table rows, learning rate) of the head's n-gram connections: none here; the
        classifier has them."""
        return 0, 0, 0.0

    # ------------------------------------------------------------------ state
    def _init_params(self, cfg, meta, mem, old):
        """Initialise what a (re)allocation activated: every parameter at the start, else the input
        rows of new features and the embedding rows of new tokens (new classes start at 0)."""
        H, G = cfg.hidden_size, cfg.gate_width
        scale = 1.0 / math.sqrt(H)
        rng = self._rng
        e = cfg.embedding_size
        if old is None:
            for layer in range(cfg.num_layers):
                for kind in (blocks.WX, blocks.WH):
                    weights = layout.block(mem, meta, kind, layer)
                    weights[:] = rng.uniform(-scale, scale, weights.shape)
                cfg.spec.init_bias(layout.block(mem, meta, blocks.BX, layer), H)
            wy = layout.block(mem, meta, blocks.WY)
            wy[:, : cfg.n_outputs] = rng.uniform(-scale, scale, (H, cfg.n_outputs))
            hyper = layout.block(mem, meta, blocks.HYPER)
            hyper[blocks.LR] = self.lr
            hyper[blocks.CLIP_NORM] = self.clip_norm
            hyper[blocks.BETA1] = 0.9
            hyper[blocks.BETA2] = 0.999
            hyper[blocks.EPS] = 1e-8
            hyper[blocks.MOMENTUM] = 0.9
            hyper[blocks.RHO] = 0.99
            hyper[blocks.HUBER_DELTA] = self.huber_delta
            hyper[blocks.X_CLIP] = 10.0
            hyper[blocks.NG_LR] = self._ngram()[2]
            old_inputs, old_tokens = 0, 0
        else:
            old_inputs, old_tokens = old.n_inputs, old.n_tokens
        new_inputs = cfg.n_inputs - old_inputs
        if new_inputs and old is not None:
            wx = layout.block(mem, meta, blocks.WX)
            wx[-new_inputs:] = rng.uniform(-scale, scale, (new_inputs, G))
        if cfg.n_tokens > old_tokens:
            emb = layout.block(mem, meta, blocks.EMB)
            emb[old_tokens : cfg.n_tokens] = rng.normal(0.0, 1.0, (cfg.n_tokens - old_tokens, e))

    def _resize(self, n_inputs=None, n_outputs=None):
        """Make room for the current features, classes and tokens; reallocate only when a shape
        changes (class and token capacity double)."""
        old = self._cfg
        n_inputs = len(self._features) if n_inputs is None else n_inputs
        n_outputs = self._n_outputs if n_outputs is None else n_outputs
        n_tokens = len(self._tokens_index)
        out_cap = n_outputs if old is None else old.out_capacity
        if n_outputs > out_cap:
            out_cap = max(2 * out_cap, n_outputs)
        tok_cap = 0 if old is None else old.token_capacity
        if n_tokens > tok_cap:
            tok_cap = max(2 * tok_cap, n_tokens, 8)
        cfg = self._config(n_inputs, max(n_outputs, 0), max(out_cap, 1), len(self._slots), n_tokens, tok_cap)
        if old is None:
            meta, mem, scratch = layout.allocate(cfg, _DTYPES[self.dtype])
        elif cfg.same_shape(old):
            meta, mem, scratch = self._meta, self._mem, self._scratch
            meta[blocks.N_OUT] = cfg.n_outputs
            meta[blocks.N_TOKENS] = cfg.n_tokens
        else:
            meta, mem, scratch = layout.regrow(old, self._meta, self._mem, cfg)
        self._init_params(cfg, meta, mem, old)
        self._cfg, self._meta, self._mem, self._scratch = cfg, meta, mem, scratch
        self._make_buffers()

    def _make_buffers(self):
        """The input buffers are views of scratch blocks (the kernels read them there); they, and
        the encoder that fills them, follow scratch whenever it is reallocated."""
        meta, scratch = self._meta, self._scratch
        self._encoder = InputEncoder(
            layout.block(scratch, meta, blocks.XIN), layout.block(scratch, meta, blocks.PRESENT),
            layout.block(scratch, meta, blocks.TOKIN), self._features, self._categorical, self._slots,
            self._tokens_index, self.dtype, embed=self.embedding_size is not None)
        self._outbuf = layout.block(scratch, meta, blocks.POUT)
        _resolve_kernels(self._mem, meta, scratch)

    # recomputed on every call, or derived from the rest: not part of a pickle
    _TRANSIENT = ("_scratch", "_encoder", "_outbuf")

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in self._TRANSIENT:
            state.pop(k, None)
        # the generator's four numbers, not the Generator object (a tenth of the bytes)
        state["_rng"] = _rng_state(self._rng)
        if self._cfg is not None:
            # stale window rows are not part of the model either (see layout.pack); raw bytes,
            # because an array's pickle header costs more than a hundred bytes per key model
            header, values = layout.pack(self._cfg, self._meta, self._mem)
            state["_meta"], state["_mem"] = header.tobytes(), values.tobytes()
        return state

    def clone(self, new_params=None, include_attributes=False):
        """River's clone; with ``include_attributes``, the learned state as a deep copy has it (River
        copies attribute by attribute, which would part the input buffers from the scratch array
        whose views they are)."""
        clone = super().clone(new_params)
        if include_attributes:
            state = self.__getstate__()  # arrays as bytes: the clone builds its own, and its views
            state.update(clone._get_params())
            clone.__setstate__(copy.deepcopy(state))
        return clone

    # arrays of the state, as raw bytes in a pickle (dtype None: the model's), see persist
    _STATE_ARRAYS = {"_meta": np.int64, "_mem": None}

    def _check_state(self, state: dict):
        """Raise ``ValueError`` unless ``state`` (decoded by :mod:`streamrnn.persist`, arrays as
        numpy arrays) is one this estimator, with its parameters, could have written."""
        rng = state["_rng"]
        if not (type(rng) is tuple and len(rng) == 4 and all(type(v) is int for v in rng)
                and 0 <= rng[0] < 2**128 and 0 <= rng[1] < 2**128 and rng[2] in (0, 1) and 0 <= rng[3] < 2**32):
            raise ValueError("bad random generator state")
        features = _index(state["_features"], "_features", _is_feature_key)
        slots = _index(state["_slots"], "_slots", _is_name)
        tokens = _index(state["_tokens_index"], "_tokens_index",
                        lambda k: type(k) is tuple and len(k) == 2 and k[0] in slots and type(k[1]) is str)
        categorical = state["_categorical"]
        if type(categorical) is not list or len(categorical) != len(features) or any(
                type(c) is not bool for c in categorical):
            raise ValueError("_categorical does not match _features")
        n_outputs = state["_n_outputs"]
        if type(n_outputs) is not int or n_outputs < 0:
            raise ValueError("bad _n_outputs")
        cfg = state["_cfg"]
        if cfg is None:
            if state["_meta"] is not None or state["_mem"] is not None:
                raise ValueError("state arrays without a configuration")
            return
        fields = [f.name for f in dataclasses.fields(layout.Config)]
        if type(cfg) is not list or len(cfg) != len(fields) or any(type(v) not in (int, str, bool) for v in cfg):
            raise ValueError("bad configuration")
        cfg = layout.Config(*cfg)
        out_cap, tok_cap = cfg.out_capacity, cfg.token_capacity
        if not (max(n_outputs, 1) <= out_cap <= 2 * max(n_outputs, 1)
                and len(tokens) <= tok_cap <= max(2 * len(tokens), 8) and (tok_cap > 0 or not tokens)):
            raise ValueError("capacities do not follow from the classes and tokens")
        if cfg != self._config(len(features), n_outputs, out_cap, len(slots), len(tokens), tok_cap):
            raise ValueError("configuration does not follow from the parameters and features")
        meta, mem = state["_meta"], state["_mem"]
        if meta is None or mem is None or mem.dtype != _DTYPES[self.dtype] or meta.dtype != np.int64:
            raise ValueError("state arrays missing or of another dtype")
        layout.check_packed(cfg, meta, mem)
        state["_cfg"] = cfg

    def _restore_checked(self, state: dict):
        """Become the model ``state`` describes, once :meth:`_check_state` accepts it."""
        try:
            self._check_state(state)
        except (ValueError, TypeError, KeyError) as e:
            from .persist import StateError

            raise StateError(f"invalid {type(self).__name__} state: {e}") from None
        for name in self._STATE_ARRAYS:
            if state[name] is not None:
                state[name] = state[name].tobytes()
        self.__setstate__(state)
        if self._cfg is not None:
            layout.check_indices(self._cfg, self._meta, self._mem)

    def __setstate__(self, state):
        self.__dict__.update(dict.fromkeys(self._TRANSIENT))
        self.__dict__.update(state)
        if isinstance(self._rng, tuple):
            self._rng = _rng_from_state(self._rng)
        if self._cfg is not None:
            if not isinstance(self._mem, bytes):
                raise ValueError("this model was saved by an older streamrnn whose state layout differs; "
                                 "it cannot be restored by this version")
            dtype = _DTYPES[self.dtype]
            header = np.frombuffer(self._meta, dtype=np.int64)
            values = np.frombuffer(self._mem, dtype=dtype)
            self._meta, self._mem, self._scratch = layout.unpack(self._cfg, header, values, dtype)
            self._make_buffers()

    # ------------------------------------------------------------------ inputs
    def _vectorize(self, x: dict, learn: bool):
        """Fill the input buffers from ``x``; with ``learn``, add inputs for new features and
        embedding rows for new categories (see :meth:`InputEncoder.fill`).

        Raises :class:`~streamrnn.BadInput` naming the feature on a non-finite number or an
        unsupported type, before anything in the model changes.
        """
        if self._cfg is None:
            return self._vectorize_first(x, learn)  # fill refuses an x that is not a dict
        if self._encoder.fill(x, learn):
            self._resize()  # room for what fill added to the index; a new encoder fills again
            self._encoder.fill(x, learn)

    def _vectorize_first(self, x: dict, learn: bool):
        """:meth:`_vectorize` of the first input: the state is allocated (and initialised from the
        generator) to fill it, and dropped again if ``x`` is refused."""
        generator = self._rng.bit_generator.state
        self._resize()
        try:
            self._vectorize(x, learn)
        except BadInput:
            for name in ("_cfg", "_meta", "_mem") + self._TRANSIENT:
                setattr(self, name, None)
            self._rng.bit_generator.state = generator
            raise

    def _learn(self, x: dict, target: float) -> float:
        self._vectorize(x, learn=True)
        return self._learn_step(target)

    def _learn_step(self, target: float) -> float:
        """One learning step on the inputs already in the buffers; the prequential loss."""
        return float(KERNELS[self.dtype].learn_event(self._mem, self._meta, self._scratch, target))

    def _predict_out(self, x: dict):
        """The head's output for ``x`` from the current state (None before anything is learned)."""
        if self._cfg is None:
            return None
        self._vectorize(x, learn=False)
        KERNELS[self.dtype].predict_event(self._mem, self._meta, self._scratch)
        return self._outbuf[: self._cfg.n_outputs]  # a view: read it before the next call

    def _check_target(self, y) -> float:
        return check_number(y, "y", MAX_ABS[self.dtype])

    # ------------------------------------------------------------------ introspection
    @property
    def n_updates(self) -> int:
        """Optimizer steps taken."""
        return 0 if self._meta is None else int(self._meta[blocks.N_UPDATES])

    @property
    def n_skipped_updates(self) -> int:
        """Updates skipped because the loss or the gradient was not finite."""
        return 0 if self._meta is None else int(self._meta[blocks.N_SKIPPED])

    @property
    def n_parameters(self) -> int:
        return 0 if self._meta is None else int(self._meta[blocks.N_PARAMS])


# The kernels' compiled entry points for a model's arrays, by dtype name (see _jit.entry_point):
# every model's arrays of one dtype have the same numba types (1-D, C-contiguous, writable). They
# live here, not on the estimators: River's memory accounting walks an estimator's attributes, and
# a compiled function leads it to weak references that it cannot read.
KERNELS: dict[str, types.SimpleNamespace] = {}


def _resolve_kernels(mem, meta, scratch):
    for a in (mem, meta, scratch):
        if not (a.ndim == 1 and a.flags.c_contiguous and a.flags.writeable and a.flags.aligned):
            raise RuntimeError("a model's state arrays must be 1-D, C-contiguous, writable and aligned")
    if mem.dtype.name not in KERNELS:
        KERNELS[mem.dtype.name] = types.SimpleNamespace(
            predict_event=entry_point(E.predict_event, mem, meta, scratch),
            learn_event=entry_point(E.learn_event, mem, meta, scratch, 0.0),
            predict_learn_event=entry_point(E.predict_learn_event, mem, meta, scratch, 0.0),
        )


def _rng_state(rng: np.random.Generator) -> tuple:
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError(f"unexpected bit generator {st['bit_generator']!r}")
    return st["state"]["state"], st["state"]["inc"], st["has_uint32"], st["uinteger"]


def _rng_from_state(numbers: tuple) -> np.random.Generator:
    state, inc, has_uint32, uinteger = numbers
    bits = np.random.PCG64()
    bits.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                  "has_uint32": has_uint32, "uinteger": uinteger}
    return np.random.Generator(bits)


def _is_name(key) -> bool:
    return type(key) in (str, int)


def _is_feature_key(key) -> bool:
    """A feature name, or ``(name, category)`` of a one-hot or calendar input."""
    return _is_name(key) or (type(key) is tuple and len(key) == 2 and _is_name(key[0]) and type(key[1]) is str)


def _index(mapping, what, valid_key) -> dict:
    """``mapping`` if it maps valid keys to 0 .. n - 1, each once; else ``ValueError``."""
    if type(mapping) is not dict or not all(valid_key(k) for k in mapping):
        raise ValueError(f"bad keys in {what}")
    if sorted(v if type(v) is int else -1 for v in mapping.values()) != list(range(len(mapping))):
        raise ValueError(f"{what} is not a numbering 0 .. n - 1")
    return mapping
