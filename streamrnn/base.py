"""The engine shared by every streamrnn estimator: River dicts in, flat kernel state inside."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import numbers
import types

import numpy as np

from . import cells, layout
from .errors import BadInput
from .kernels import blocks
from .kernels import engine as E
from .kernels._jit import entry_point

_DTYPES = {"float64": np.float64, "float32": np.float32}
# Largest magnitude accepted for an input or a target: the running variance squares deviations,
# so anything near sqrt(max float) would overflow the statistics and poison the model.
MAX_ABS = {"float64": 1e152, "float32": 1e16}


def _sort_key(name):
    return (type(name).__name__, repr(name))


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
        self._xbuf = None
        self._present = None
        self._cat_mask = None
        self._tokbuf = None
        self._outbuf = None
        self._memo = None  # a copy of the last x whose vectorisation the buffers hold
        self._fast = None  # (keys, columns, limit) of the last plain numeric x: see _fast_fill

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
        """The input buffers are views of scratch blocks (the kernels read them there); they
        follow scratch whenever it is reallocated."""
        cfg, meta, scratch = self._cfg, self._meta, self._scratch
        self._xbuf = layout.block(scratch, meta, blocks.XIN)
        self._present = layout.block(scratch, meta, blocks.PRESENT)
        self._cat_mask = np.array(self._categorical, dtype=np.uint8)
        self._tokbuf = layout.block(scratch, meta, blocks.TOKIN)
        self._tokbuf[:] = -1.0
        self._outbuf = layout.block(scratch, meta, blocks.POUT)
        self._memo = None
        self._fast = None
        _resolve_kernels(self._mem, meta, scratch)

    # recomputed on every call, or derived from the rest: not part of a pickle
    _TRANSIENT = ("_scratch", "_xbuf", "_present", "_cat_mask", "_tokbuf", "_outbuf", "_memo", "_fast")

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
        embedding rows for new categories.

        Raises ``ValueError`` naming the feature on a non-finite number or an unsupported type,
        before anything in the model changes.
        """
        if not isinstance(x, dict):
            raise BadInput(f"x must be a dict of features, got {type(x).__name__}")
        if self._cfg is None:
            return self._vectorize_first(x, learn)
        if self._holds(x):
            return
        self._memo = None  # the buffers are about to change
        if self._fast is not None and self._fast_fill(x):
            return
        # the buffers are about to hold an x of other keys, presence or categories: the fast path
        # (which writes only the values of its own columns) would now read stale ones
        self._fast = None
        limit = MAX_ABS[self.dtype]
        index = self._features
        embed = self.embedding_size is not None
        buf, present = self._xbuf, self._present
        buf[:] = 0.0
        present[:] = self._cat_mask  # a category not given reads as 0, and is an observation
        if embed:
            tok = self._tokbuf
            tok[:] = -1.0
        new = []  # (key, is_categorical) of dense inputs not seen before
        new_tokens = []  # (name, key) of embedded categories not seen before
        cols = []  # the dense column of each value of x, in x's order, while all are plain numbers
        skipped = False  # an unknown feature left out (learn=False): the buffers are not all of x
        for name, value in x.items():
            if type(name) is not str and (not isinstance(name, (str, int)) or isinstance(name, bool)):
                # (name, category) tuples are the keys of one-hot and calendar inputs
                raise BadInput(f"feature names must be strings or integers, got {type(name).__name__} {name!r}")
            kind = type(value)
            if kind is float or kind is int:  # the common case, without the ABC checks below
                v = _as_float(name, value)
                if v - v != 0.0 or abs(v) > limit:
                    _refuse(name, value, limit, self.dtype)
                key = name
            elif value is None:
                cols = None  # a missing feature: its presence differs from the last x
                continue
            elif kind is str or isinstance(value, str):
                cols = None
                value = str(value)
                key = (name, value)
                if embed:
                    row = self._tokens_index.get(key)
                    if row is not None:
                        tok[self._slots[name]] = row
                    elif learn:
                        new_tokens.append((name, key))
                    else:
                        skipped = True
                    continue
                v = 1.0
            elif isinstance(value, (numbers.Real, np.number)) and not isinstance(value, complex):
                key = name
                try:
                    v = float(value)
                except (TypeError, ValueError, OverflowError):
                    raise BadInput(f"feature {name!r}: cannot read {value!r} as a number") from None
                if not math.isfinite(v) or abs(v) > limit:
                    _refuse(name, value, limit, self.dtype)
            elif isinstance(value, dt.date):
                cols = None
                for key, v in _calendar(name, value):
                    i = index.get(key)
                    if i is not None:
                        buf[i] = v
                        present[i] = 1
                    elif learn:
                        new.append((key, False))
                    else:
                        skipped = True
                continue
            else:
                raise BadInput(f"feature {name!r} has unsupported type {type(value).__name__}")
            i = index.get(key)
            if i is not None:
                buf[i] = v
                present[i] = 1
                if cols is not None:
                    cols.append(i)
            elif learn:
                new.append((key, type(value) is str))
            else:
                skipped = True
        if new or new_tokens:
            # inputs are added in sorted order, so that the key order of a dict never matters
            for key, is_cat in sorted(new, key=lambda t: _sort_key(t[0])):
                index[key] = len(index)
                self._categorical.append(is_cat)
            for name, key in sorted(new_tokens, key=lambda t: _sort_key(t[1])):
                self._slots.setdefault(name, len(self._slots))
                self._tokens_index[key] = len(self._tokens_index)
            self._resize()
            self._vectorize(x, learn)  # every feature is known now: fill the new buffers
        else:
            self._memo = None if skipped else dict(x)
            if not skipped and cols is not None and len(cols) == len(x):
                self._fast = (tuple(x), cols, limit)

    def _vectorize_first(self, x: dict, learn: bool):
        """:meth:`_vectorize` of the first input: the state is allocated (and initialised from the
        generator) to fill it, and dropped again if ``x`` is refused."""
        generator = self._rng.bit_generator.state
        self._resize()
        try:
            self._vectorize(x, learn)
        except BadInput:
            for name in ("_cfg", "_meta", "_mem", "_scratch") + self._TRANSIENT:
                setattr(self, name, None)
            self._rng.bit_generator.state = generator
            raise

    def _holds(self, x) -> bool:
        """Whether the input buffers hold ``x`` already: predict_one then learn_one on the same x
        is the prequential pattern (dict equality is a cheap C-level check, and the memo is a copy,
        which guards against mutation)."""
        memo = self._memo
        if memo is None:
            return False
        try:
            return memo == x
        except ValueError:  # e.g. an array among the values: vectorising will say what is wrong
            return False

    def _fast_fill(self, x: dict) -> bool:
        """Fill the buffers when ``x`` has the same keys, in the same order, as the last plain
        numeric ``x`` and the buffers still hold that one: only the values change (presence and
        the other columns are as they were). Returns False when the slow path must decide."""
        keys, cols, limit = self._fast
        if type(x) is not dict or len(x) != len(keys):
            return False
        self._memo = None  # a refusal midway leaves the buffers half written: they hold no x then
        buf = self._xbuf
        i = 0
        for name, value in x.items():
            if name != keys[i]:
                return False  # the slow path rewrites the buffers whole
            if type(value) is not float:
                if not isinstance(value, (float, int)):
                    self._fast = None
                    return False
                value = _as_float(name, value)
            if value - value != 0.0 or abs(value) > limit:
                _refuse(name, value, limit, self.dtype)
            buf[cols[i]] = value
            i += 1
        self._memo = dict(x)
        return True

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


def _refuse(name, value, limit, dtype):
    """Raise the BadInput for a number a model cannot take."""
    if not math.isfinite(float(value)):
        raise BadInput(f"feature {name!r} is not finite: {value!r}")
    raise BadInput(f"feature {name!r} = {value!r} is beyond ±{limit:g}, the range of dtype {dtype!r}")


def _as_float(name, value) -> float:
    try:
        return float(value)
    except OverflowError:
        raise BadInput(f"feature {name!r} is too large for a float") from None


def _calendar(name, when: dt.date):
    """A date or datetime as cyclic calendar inputs: day of week and day of year (and hour of
    day for a datetime), each as a (sin, cos) pair, so seasonality is one step away."""
    tau = 2.0 * math.pi
    doy = (when.timetuple().tm_yday - 1) / 365.25
    dow = when.weekday() / 7.0
    parts = [("dow", dow), ("doy", doy)]
    if isinstance(when, dt.datetime):
        parts.append(("hour", (when.hour + when.minute / 60.0) / 24.0))
    out = []
    for part, phase in parts:
        out.append(((name, part + "_sin"), math.sin(tau * phase)))
        out.append(((name, part + "_cos"), math.cos(tau * phase)))
    return out


def check_number(value, what="y", limit=math.inf) -> float:
    """``value`` as a finite float within ±``limit``, or a ``ValueError`` that says what was wrong."""
    if type(value) is float and value - value == 0.0 and abs(value) <= limit:
        return value  # the common case, without the ABC checks
    if value is None:
        raise BadInput(f"{what} is None")
    if isinstance(value, (str, bytes)) or not isinstance(value, (numbers.Real, np.number)):
        raise BadInput(f"{what} must be a number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        raise BadInput(f"{what} is too large for a float") from None
    if not math.isfinite(v):
        raise BadInput(f"{what} is not finite: {value!r}")
    if abs(v) > limit:
        raise BadInput(f"{what} = {value!r} is beyond ±{limit:g}")
    return v
