"""Recurrent anomaly detector."""

from __future__ import annotations

import datetime as dt
import math
import numbers

import numpy as np
from river import base as river_base

from .encoder import MAX_ABS, check_number
from .errors import BadInput
from .forecaster import D_LAG, Y_LAG, RecurrentForecaster
from .kernels import tail

__all__ = ["RecurrentAnomalyDetector"]

# How an anomaly is kept from teaching the detector that it is normal: once ROBUST_AFTER errors
# are kept, an error joins them capped at CAP times their tail quantile, and the running scale
# counts an error up to SCALE_CLIP times itself.
ROBUST_AFTER = 20
CAP = 2.0
SCALE_CLIP = 4.0
# A score is -log10 of the tail probability over this many decades, capped at 1.
DECADES = 16.0
# The threshold the runner alerts at by default: a tail probability of 1e-4 (one normal event in
# ten thousand, on every stream).
ALARM_DECADES = 4.0
DEFAULT_THRESHOLD = ALARM_DECADES / DECADES


class _Window:
    """The last ``size`` values of a quantity, in arrival order and sorted
    (:mod:`streamrnn.kernels.tail`)."""

    def __init__(self, size):
        self.ring = np.zeros(size)
        self.ordered = np.zeros(size)
        self.counts = np.zeros(2, dtype=np.int64)  # filled, next slot

    @property
    def filled(self) -> int:
        return int(self.counts[0])

    def restore(self, ring, filled, at):
        self.ring[:] = ring
        self.ordered[:filled] = np.sort(ring[:filled])
        self.counts[:] = (filled, at)


class _Feature:
    """What the detector keeps of one numeric feature: the forecaster of its next value, its last
    ``window`` scaled errors and the running mean absolute error that scales them, the range of
    the values seen, and how long the value has stayed the same (with the lengths of the last
    ``window`` such runs)."""

    def __init__(self, forecaster, window):
        self.forecaster = forecaster
        self.errors = _Window(window)
        self.runs = _Window(window)
        self.scale = 0.0
        self.seen = 0
        self.low = math.inf
        self.high = -math.inf
        self.last = None  # the last value
        self.run = 0  # events in a row it has had that value


class RecurrentAnomalyDetector(river_base.AnomalyDetector):
    """Anomaly detector on a stream of events: a recurrent forecaster per numeric feature predicts
    its next value from the past, and the surprise of the value that comes is scored by how rare
    so large an error is.

    `score_one(x)` scores `x` given the events before it, without learning it; `learn_one(x)`
    learns it. For each numeric feature the detector keeps a :class:`RecurrentForecaster` (the
    dates and strings of `x` are its calendar and categorical inputs), and the last `window`
    errors of that forecaster, each divided by its running mean absolute error. The score of a
    value is the tail probability `p` of its error among those: the share at least as large, and
    beyond their `tail_quantile` an exponential tail fitted to the excesses (peaks over threshold),
    so an error larger than any seen still gets a graded score. A value outside the range seen
    so far by more than `range_tolerance` of that range scores 1. A value that repeats the last one
    is also scored by how rare so long a run of one value has been (a stuck sensor predicts
    itself too well for its errors to tell). The score of an event is the largest of its
    features'.

    Scores are calibrated: the score is `-log10(p) / 16`, capped at 1, so on a stream the model
    predicts as well as before, `P(score >= s)` is about `10 ** (-16 s)` whatever the stream's
    scale: one threshold means the same false-alarm rate on every stream (0.25: one event in ten
    thousand). Until a feature has `warmup` errors behind it, it scores 0.

    Parameters
    ----------
    cell, hidden_size, truncation, lr, dtype
        The forecasters' network (see :class:`RecurrentForecaster`).
    window
        How many recent errors per feature the score compares with.
    tail_quantile
        Beyond this quantile of the recent errors, the tail is the fitted exponential.
    warmup
        Events of a feature before it is scored.
    range_tolerance
        A value beyond the range seen by more than this fraction of it scores 1 (0 turns it off).
    seed
        Seed of the forecasters' weights.

    Examples
    --------

    River's WaterFlow series (hourly flow through a pipeline, about 100 l/s) has four anomalous
    segments: three low-flow moments and a pumping peak. The hours the detector found most
    surprising, each scored before it was learned:

    >>> from river import datasets
    >>> import streamrnn

    >>> detector = streamrnn.RecurrentAnomalyDetector(seed=42)
    >>> scored = []
    >>> for x, flow in datasets.WaterFlow():
    ...     event = {"flow": flow, **x}
    ...     scored.append((detector.score_one(event), x["Time"], flow))
    ...     detector.learn_one(event)
    >>> for score, when, flow in sorted(scored, key=lambda s: -s[0])[:5]:
    ...     print(f"{when:%Y-%m-%d %H:%M}  {flow:5.1f} l/s  score {score:.2f}")
    2022-03-25 00:00   75.3 l/s  score 1.00
    2022-03-29 17:00   59.2 l/s  score 1.00
    2022-03-29 09:00   24.3 l/s  score 0.82
    2022-03-24 23:00   56.8 l/s  score 0.65
    2022-04-28 05:00   82.8 l/s  score 0.38

    A score of 0.25 (`streamrnn.detector.DEFAULT_THRESHOLD`) is a tail probability of 1e-4:

    >>> sum(score >= 0.25 for score, _, _ in scored)
    9

    """

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 32,
        truncation: int = 16,
        lr: float = 3e-3,
        window: int = 2000,
        tail_quantile: float = 0.98,
        warmup: int = 100,
        range_tolerance: float = 0.05,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.truncation = truncation
        self.lr = lr
        self.window = window
        self.tail_quantile = tail_quantile
        self.warmup = warmup
        self.range_tolerance = range_tolerance
        self.dtype = dtype
        self.seed = seed
        if type(window) is not int or window < 10:
            raise ValueError(f"window must be an int of at least 10, got {window!r}")
        if not 0.5 <= tail_quantile < 1.0:
            raise ValueError(f"tail_quantile must be in [0.5, 1), got {tail_quantile!r}")
        if type(warmup) is not int or not 1 <= warmup <= window:
            raise ValueError(f"warmup must be an int in [1, window], got {warmup!r}")
        if not (isinstance(range_tolerance, numbers.Real) and range_tolerance >= 0):
            raise ValueError(f"range_tolerance must be a number >= 0, got {range_tolerance!r}")
        self._template().clone()  # the forecaster's parameters are checked where they are defined
        self._features: dict[str, _Feature] = {}

    @classmethod
    def _unit_test_params(cls):
        yield {"hidden_size": 4, "truncation": 4, "window": 50, "warmup": 5, "seed": 1}
        yield {"cell": "gru", "hidden_size": 4, "window": 20, "warmup": 20, "range_tolerance": 0.0, "seed": 1}

    @property
    def _is_stochastic(self):
        return True

    @property
    def n_skipped_updates(self) -> int:
        """Updates the forecasters skipped because a loss or a gradient was not finite."""
        return sum(f.forecaster.n_skipped_updates for f in self._features.values())

    def _template(self):
        return RecurrentForecaster(cell=self.cell, hidden_size=self.hidden_size, truncation=self.truncation,
                                   lr=self.lr, dtype=self.dtype, seed=self.seed)

    # ---------------------------------------------------------------- the state format
    _FEATURE_FIELDS = {"name", "forecaster", "filled", "at", "scale", "seen", "low", "high", "last", "run",
                       "runs_filled", "runs_at"}

    def _state_parts(self, parts_of):
        """The header fields and arrays :mod:`streamrnn.persist` writes: per feature, its
        forecaster's (as ``parts_of`` gives them), its error window (arrays ``K:ring`` and
        ``K:<forecaster array>``, K its position) and its counters."""
        features, arrays = [], []
        for k, (name, f) in enumerate(self._features.items()):
            fields, own = parts_of(f.forecaster)
            features.append({"name": name, "forecaster": fields, "filled": f.errors.filled,
                             "at": int(f.errors.counts[1]), "scale": f.scale, "seen": f.seen,
                             "low": f.low if f.seen else None, "high": f.high if f.seen else None,
                             "last": f.last, "run": f.run, "runs_filled": f.runs.filled,
                             "runs_at": int(f.runs.counts[1])})
            arrays += [(f"{k}:ring", f.errors.ring), (f"{k}:runs", f.runs.ring)] + [(f"{k}:{a}", v) for a, v in own]
        return {"features": features}, arrays

    def _window_from(self, where, ring, filled, at) -> _Window:
        """A window restored from its saved ring and counters, checked."""
        if not (type(filled) is int and type(at) is int and 0 <= filled <= self.window and 0 <= at < self.window
                and (filled == self.window or at == filled)):
            raise ValueError(f"{where}: bad counters")
        if ring is None or ring.dtype != np.float64 or ring.shape != (self.window,) or not (
                np.isfinite(ring).all() and ring.min() >= 0):
            raise ValueError(f"{where}: bad window")
        window = _Window(self.window)
        window.restore(ring, filled, at)
        return window

    def _restore_parts(self, state, arrays: dict, model_from):
        """Rebuild the features from what :meth:`_state_parts` wrote, every field checked
        (``ValueError`` otherwise) before the detector holds any of it."""
        if type(state) is not dict or set(state) != {"features"} or type(state["features"]) is not list:
            raise ValueError("bad detector state")
        template, features, used = self._template()._get_params(), {}, set()
        for k, item in enumerate(state["features"]):
            if type(item) is not dict or set(item) != self._FEATURE_FIELDS:
                raise ValueError(f"feature {k}: bad fields")
            name, seen, run, last = item["name"], item["seen"], item["run"], item["last"]
            if type(name) is not str or name in features:
                raise ValueError(f"feature {k}: bad or repeated name")
            where = f"feature {name[:40]!r}"
            errors = self._window_from(f"{where}, errors", arrays.get(f"{k}:ring"), item["filled"], item["at"])
            runs = self._window_from(f"{where}, runs", arrays.get(f"{k}:runs"), item["runs_filled"], item["runs_at"])
            if not (type(seen) is int and type(run) is int and errors.filled <= max(seen - 1, 0)
                    and runs.filled < max(seen, 1) and 0 <= run <= seen and (run == 0) == (seen == 0)):
                raise ValueError(f"{where}: bad counters")
            scale, low, high = item["scale"], item["low"], item["high"]
            if type(scale) is not float or not (math.isfinite(scale) and scale >= 0):
                raise ValueError(f"{where}: bad scale")
            if seen == 0:
                if low is not None or high is not None or last is not None:
                    raise ValueError(f"{where}: a range before any value")
            elif not (type(low) is float and type(high) is float and type(last) is float and math.isfinite(low)
                      and math.isfinite(high) and low <= last <= high):
                raise ValueError(f"{where}: bad range")
            prefix = f"{k}:"
            own = {a[len(prefix):]: v for a, v in arrays.items()
                   if a.startswith(prefix) and a not in (f"{k}:ring", f"{k}:runs")}
            forecaster = model_from(item["forecaster"], own)
            if type(forecaster) is not RecurrentForecaster or forecaster._get_params() != template:
                raise ValueError(f"{where}: the forecaster has other parameters than the detector's")
            used |= {f"{k}:ring", f"{k}:runs"} | {prefix + a for a in own}
            f = _Feature(forecaster, self.window)
            f.errors, f.runs, f.scale, f.seen, f.run, f.last = errors, runs, scale, seen, run, last
            if seen:
                f.low, f.high = low, high
            features[name] = f
        if set(arrays) != used:
            raise ValueError("the detector state has arrays of no feature")
        self._features = features

    # ---------------------------------------------------------------- input
    def _split(self, x) -> tuple[dict, dict | None]:
        """The numeric features of ``x`` (checked numbers) and its context (dates and strings, the
        forecasters' inputs), or a :class:`~streamrnn.BadInput` before anything changes."""
        if not isinstance(x, dict):
            raise BadInput(f"x must be a dict of features, got {type(x).__name__}")
        values, context = {}, {}
        limit = MAX_ABS[self.dtype]
        for name, v in x.items():
            if not isinstance(name, str):
                raise BadInput(f"feature names must be strings, got {type(name).__name__}")
            if name in (Y_LAG, D_LAG):
                raise BadInput(f"feature names {Y_LAG!r} and {D_LAG!r} are reserved")
            if isinstance(v, (dt.date, str)):
                context[name] = v
            elif isinstance(v, bool) or v is None:
                raise BadInput(f"feature {name!r} must be a number, a string or a date, got {v!r}")
            else:
                values[name] = check_number(v, f"feature {name!r}", limit, self.dtype)
        return values, context or None

    # ---------------------------------------------------------------- scoring
    def _feature_score(self, f: _Feature, value, context) -> float:
        if f.seen < self.warmup:
            return 0.0
        if self.range_tolerance and f.high > f.low:
            margin = self.range_tolerance * (f.high - f.low)
            if value > f.high + margin or value < f.low - margin:
                return 1.0
        error = abs(value - f.forecaster.forecast(1, None if context is None else [context])[0])
        raw = error / f.scale if f.scale > 0 else 0.0
        log_p = tail.log10_tail(f.errors.ordered, f.errors.filled, self.tail_quantile, raw)
        if value == f.last and f.runs.filled >= ROBUST_AFTER:
            # a value that stops moving: how rare so long a run of it has been (a stuck sensor
            # predicts itself too well for its errors to tell), at the event where the run becomes
            # an alert; its later events say nothing new
            run_p = tail.log10_tail(f.runs.ordered, f.runs.filled, self.tail_quantile, f.run + 1.0)
            if tail.log10_tail(f.runs.ordered, f.runs.filled, self.tail_quantile, float(f.run)) > -ALARM_DECADES:
                log_p = min(log_p, run_p)
        return min(-log_p / DECADES, 1.0)

    def score_one(self, x: dict) -> float:
        values, context = self._split(x)
        score = 0.0
        for name, value in values.items():
            f = self._features.get(name)
            if f is not None:
                score = max(score, self._feature_score(f, value, context))
        return score

    def learn_one(self, x: dict) -> None:
        values, context = self._split(x)
        xs = None if context is None else [context]
        # every forecast first: they check the context as learning would, before anything changes
        errors = {name: abs(value - f.forecaster.forecast(1, xs)[0]) for name, value in values.items()
                  if (f := self._features.get(name)) is not None}
        for name, value in values.items():
            f = self._features.get(name)
            if f is None:
                f = self._features[name] = _Feature(self._template(), self.window)
            if f.seen:
                error = errors[name]
                raw = error / f.scale if f.scale > 0 else 0.0
                self._keep(f.errors, raw)
                # the mean absolute error, over about the last thousand events once it has fifty,
                # each error counted up to SCALE_CLIP times the mean: a spike barely moves it, a
                # lasting change moves it tenfold in about 800 events
                if f.seen > 50:
                    f.scale = 0.999 * f.scale + 0.001 * min(error, SCALE_CLIP * f.scale)
                else:
                    f.scale = (f.scale * (f.seen - 1) + error) / f.seen
            if value == f.last:
                f.run += 1
            else:
                if f.run:
                    self._keep(f.runs, float(f.run))
                f.last, f.run = value, 1
            f.forecaster.learn_one(value, context)
            f.low, f.high = min(f.low, value), max(f.high, value)
            f.seen += 1

    def _keep(self, window: _Window, value):
        n = window.filled
        if n >= ROBUST_AFTER:
            # a value enters the distribution capped at CAP times its tail quantile: a burst of
            # anomalies barely stretches the tail (the next ones would look normal), while a
            # lasting change still raises the quantile, CAP-fold every (1 - tail_quantile) * window
            value = tail.capped(window.ordered, n, self.tail_quantile, value, CAP)
        tail.push(window.ring, window.ordered, window.counts, value)
