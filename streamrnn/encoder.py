"""River dicts to a model's input columns, and the one place numbers are validated.

An :class:`InputEncoder` fills a model's input buffers (views of its scratch array) from a dict of
features: numbers go to their column, a category to its one-hot column or its embedding row, a
date to its calendar columns. It owns the caches that make the prequential pattern cheap (the
last ``x``, and the columns of the last plain numeric ``x``), so nothing else needs to know when
they go stale: every write to the buffers goes through the encoder.

The feature index it extends (names to columns, categories to embedding rows) is the estimator's,
which pickles it; the encoder itself is rebuilt with the buffers whenever the state is
(re)allocated.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers

import numpy as np

from .errors import BadInput

# Largest magnitude accepted for an input or a target: the running variance squares deviations,
# so anything near sqrt(max float) would overflow the statistics and poison the model.
MAX_ABS = {"float64": 1e152, "float32": 1e16}


def check_number(value, what="y", limit=math.inf, dtype=None) -> float:
    """``value`` as a finite float within ±``limit`` (the range of ``dtype``, if given), or a
    :class:`~streamrnn.BadInput` that says what was wrong."""
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
    except (TypeError, ValueError):
        raise BadInput(f"{what}: cannot read {value!r} as a number") from None
    if not math.isfinite(v):
        raise BadInput(f"{what} is not finite: {value!r}")
    if abs(v) > limit:
        raise BadInput(f"{what} = {value!r} is beyond ±{limit:g}" + (f", the range of dtype {dtype!r}" if dtype else ""))
    return v


def _feature_value(name, value, limit, dtype) -> float:
    """A numeric feature's value, by :func:`check_number` (the slow path: the callers take a
    plain int or float within the limit themselves)."""
    return check_number(value, f"feature {name!r}", limit, dtype)


def calendar(name, when: dt.date):
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


def _sort_key(name):
    return (type(name).__name__, repr(name))


class InputEncoder:
    """Fills the input buffers ``xbuf`` (dense values), ``present`` (which of them ``x`` gave)
    and ``tokens`` (the embedding row of each categorical slot, -1 for none) from dicts.

    ``features`` maps a feature name, or ``(name, category)`` for a one-hot or calendar column, to
    its column; ``categorical`` says which columns are one-hot; ``slots`` maps an embedded
    categorical feature to its slot and ``tokens_index`` a ``(name, category)`` to its embedding
    row (``embed``: categories are embedded, not one-hot). These are the estimator's own.
    """

    def __init__(self, xbuf, present, tokens, features, categorical, slots, tokens_index, dtype, embed):
        self.xbuf, self.present, self.tokens = xbuf, present, tokens
        self.features, self.categorical = features, categorical
        self.slots, self.tokens_index = slots, tokens_index
        self.dtype, self.limit, self.embed = dtype, MAX_ABS[dtype], embed
        self._cat_mask = np.array(categorical, dtype=np.uint8)
        self.tokens[:] = -1.0
        self._memo = None  # a copy of the last x whose encoding the buffers hold
        self._fast = None  # (keys, columns) of the last plain numeric x: see fast_fill

    def __getstate__(self):
        raise TypeError("an InputEncoder is rebuilt with the model's buffers, never stored")

    @property
    def holds_all(self) -> bool:
        """Whether the buffers hold every feature of the last ``x`` filled (none was unknown)."""
        return self._memo is not None

    def holds(self, x) -> bool:
        """Whether the buffers hold ``x`` already: predict_one then learn_one on the same x is the
        prequential pattern (dict equality is a cheap C-level check, and the memo is a copy, which
        guards against mutation)."""
        memo = self._memo
        if memo is None:
            return False
        try:
            return memo == x
        except ValueError:  # e.g. an array among the values: encoding will say what is wrong
            return False

    def fast_fill(self, x) -> bool:
        """Fill the buffers when ``x`` has the same keys, in the same order, as the last plain
        numeric ``x`` and the buffers still hold that one: only the values change (presence and
        the other columns are as they were). Returns False when :meth:`fill` must decide."""
        if self._fast is None:
            return False
        keys, cols = self._fast
        if type(x) is not dict or len(x) != len(keys):
            return False
        self._memo = None  # a refusal midway leaves the buffers half written: they hold no x then
        limit, buf = self.limit, self.xbuf
        i = 0
        for name, value in x.items():
            if name != keys[i]:
                return False  # fill rewrites the buffers whole
            if type(value) is not float and not isinstance(value, (float, int)):
                self._fast = None
                return False
            if not abs(value) <= limit:  # also true of a NaN
                value = _feature_value(name, value, limit, self.dtype)  # raises, naming the feature
            buf[cols[i]] = value
            i += 1
        self._memo = dict(x)
        return True

    def fill(self, x: dict, learn: bool) -> bool:
        """Fill the buffers from ``x``. With ``learn``, features and categories not seen before
        are added to the index and True is returned: the caller then makes room for them and
        fills again. Without ``learn`` they are left out.

        Raises :class:`~streamrnn.BadInput` naming the feature on a non-finite number, a name or
        a value of an unsupported type, before the index changes.
        """
        if not isinstance(x, dict):
            raise BadInput(f"x must be a dict of features, got {type(x).__name__}")
        if self.holds(x) or self.fast_fill(x):
            return False
        self._memo = None  # the buffers are about to change
        # the buffers are about to hold an x of other keys, presence or categories: the fast path
        # (which writes only the values of its own columns) would now read stale ones
        self._fast = None
        limit, dtype = self.limit, self.dtype
        index = self.features
        embed = self.embed
        buf, present, tok = self.xbuf, self.present, self.tokens
        buf[:] = 0.0
        present[:] = self._cat_mask  # a category not given reads as 0, and is an observation
        if embed:
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
                if not abs(value) <= limit:  # also true of a NaN
                    _feature_value(name, value, limit, dtype)  # raises, naming the feature
                v = value
                key = name
            elif value is None:
                cols = None  # a missing feature: its presence differs from the last x
                continue
            elif kind is str or isinstance(value, str):
                cols = None
                value = str(value)
                key = (name, value)
                if embed:
                    row = self.tokens_index.get(key)
                    if row is not None:
                        tok[self.slots[name]] = row
                    elif learn:
                        new_tokens.append((name, key))
                    else:
                        skipped = True
                    continue
                v = 1.0
            elif isinstance(value, (numbers.Real, np.number)) and not isinstance(value, complex):
                key = name
                v = _feature_value(name, value, limit, dtype)
            elif isinstance(value, dt.date):
                cols = None
                for key, v in calendar(name, value):
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
                self.categorical.append(is_cat)
            for name, key in sorted(new_tokens, key=lambda t: _sort_key(t[1])):
                self.slots.setdefault(name, len(self.slots))
                self.tokens_index[key] = len(self.tokens_index)
            return True
        self._memo = None if skipped else dict(x)
        if not skipped and cols is not None and len(cols) == len(x):
            self._fast = (tuple(x), cols)
        return False

    def fill_dense(self, values):
        """Fill the buffers with ``values``, one per dense column (None: absent), for a model
        whose every input is given this way (no embedded categories); the values are the
        caller's to have checked."""
        if len(values) != self.xbuf.shape[0] or self.slots:
            raise ValueError("fill_dense gives every dense column and nothing else")
        self._memo = None
        self._fast = None
        for i, v in enumerate(values):
            self.xbuf[i] = 0.0 if v is None else v
            self.present[i] = v is not None
