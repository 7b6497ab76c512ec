"""Recurrent forecaster."""

from __future__ import annotations

import copy
import datetime as dt
import math

import numpy as np
from river.time_series.base import Forecaster

from . import seasonality as seasons
from .errors import BadInput
from .base import KERNELS, MAX_ABS, RecurrentEstimator
from .kernels import classic
from .kernels import engine as E
from .kernels import shrink

__all__ = ["RecurrentForecaster"]

# The forecaster's experts, each a forecast of the next change from the last value; it uses the
# one with the lowest recent absolute error. Shrunk network changes ``w * predicted`` (w = 0 is
# persistence), so a change the network cannot predict is not added as noise; and steps toward a
# robust level of the series (a running median), which win on spiky series where a jump is
# followed by a return.
SHRINK_WEIGHTS = np.array([0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])
LEVEL_BLENDS = np.array([0.5, 1.0])
N_EXPERTS = len(SHRINK_WEIGHTS) + len(LEVEL_BLENDS)
# Persistence until the experts have this many steps behind them: early choices are noise.
SHRINK_WARMUP = 32
# The running median moves by this fraction of the mean absolute deviation from it per step.
LEVEL_STEP = 0.02
LEVEL_DEVIATION_DECAY = 0.99
# Irregularly sampled series (x carries a datetime): a step that comes after a gap longer than this
# many times the typical gap (a running median of the gaps) is judged apart, because after a long
# silence the last value says less about the next one and another expert may be the best.
LONG_GAP = 2.5
GAP_STEP = 0.05
# Contexts of the experts' errors.
REGULAR, AFTER_LONG_GAP = 0, 1

# Residuals kept per horizon for the prediction intervals.
INTERVAL_RING = 48
# the highest coverage INTERVAL_RING errors can vouch for: a new error is above all n known ones
# with probability 1 / (n + 1), so a higher coverage would leave the interval unbounded for ever
MAX_COVERAGE = INTERVAL_RING / (INTERVAL_RING + 1)
# Values seen at which the seasonal periods are decided from the calendar (the typical gap between
# events is known after two) and then, where the calendar says nothing, from the autocorrelation.
CALENDAR_CHECKPOINT = 3

# Input columns 0 and 1 of a forecaster: the previous value of the series and its last change.
Y_LAG = "__y_lag__"
D_LAG = "__y_change__"
# Inputs added once a seasonal period is known (see classic.seasonal_inputs): the change to the value
# one season before the next step, and that season's change over the same step.
SEASON_AHEAD = "__season_ahead__"
SEASON_CHANGE = "__season_change__"
RESERVED = (Y_LAG, D_LAG, SEASON_AHEAD, SEASON_CHANGE)


class RecurrentForecaster(RecurrentEstimator, Forecaster):
    """Stateful recurrent network forecaster, learning online with truncated BPTT.

    At each step the network reads the previous value of the series, its last change, once a
    seasonal period is known the change to the value one season before the next step and that
    season's change over the step, and the exogenous features `x` if any (dates become calendar
    inputs), and predicts the change to the next value (with `differencing`, the default: the
    network learns a residual on top of persistence, which is what makes it robust on trending and
    random-walk-like series), or the next value itself. `forecast` rolls the network forward from
    its current state, feeding each forecast back as the next input, without changing the model.

    With `shrinkage` (and `differencing`), the forecast is the one of a few experts with the lowest
    recent absolute error: the last value plus the network's change scaled by 0 (persistence) to 1,
    or a step toward a running median of the series (which wins on spiky series, where a jump is
    followed by a return). When `x` carries a datetime, steps after an unusually long gap between
    events are judged apart, since after a long silence the last value says less.

    Classic forecasters compete with the network, per horizon 1..`horizon`: persistence, a damped
    trend, a reversion to a moving mean, the last change carried on as the changes correlate, the
    random walk with its drift, and per seasonal period the seasonal naive forecast (alone, with a
    seasonal drift, or added to the last value as last season's change) and damped Holt-Winters,
    the trend, drift and Holt-Winters ones also on the logs of the series while it is positive
    (growth in percent, a season whose amplitude follows the level). Every horizon forecasts with
    its own expert of lowest recent absolute error; the network's experts compete at the first
    step, the classic ones at every step. The seasonal periods come from
    `seasonality`, or else from the calendar when `x` carries dates (monthly data: 12, quarterly: 4,
    weekly: 52, daily: 7, hourly: 24 and 168, a step that divides a day: a day), or else from the
    autocorrelation of the first values (up to 768), where a period must stand out of the noise.

    When the inputs of the forecast steps `xs` carry dates, each step is forecast for its date (so
    many steps ahead of the last value learned), not for its position in `xs`.

    Parameters
    ----------
    cell
        Recurrent cell: `"lstm"`, `"gru"`, `"rnn"` or `"mingru"` (no recurrent matrix: cheaper with many units).
    hidden_size
        Units per layer.
    num_layers
        Stacked recurrent layers.
    truncation
        k2: how many past steps the gradient flows back through.
    update_every
        k1: one optimizer step every `update_every` events.
    optimizer
        `"adam"`, `"rmsprop"` or `"sgd"`.
    lr
        Learning rate.
    clip_norm
        The gradient is rescaled to this global norm when it is longer (0 disables clipping).
    loss
        `"squared"` or `"huber"`.
    huber_delta
        Where the Huber loss turns linear, in standard deviations of the target.
    embedding_size
        With a size, categorical (string) features go through a learned embedding of that size
        (the sum over features of one row per `name=value`, updated sparsely), so the cost of an
        event does not grow with the number of categories; with `None`, each category is a
        one-hot input.
    normalize
        Standardise inputs and target online.
    differencing
        Predict the change from the last value (a residual on persistence) instead of the value.
    shrinkage
        Forecast with the expert of lowest recent absolute error (see above) instead of the
        network's change as it is.
    seasonality
        The seasonal period in steps, or a list of up to two; `0` or `[]` for none; `None` (the
        default) to find them (see above).
    horizon
        The horizons the experts are scored for (1 to `horizon`); farther steps forecast with the
        expert of the last one.
    dtype
        `"float32"` (the default: twice the vector lanes and half the memory traffic) or
        `"float64"`.
    seed
        Seed of the weight initialisation.

    Examples
    --------

    Dates and datetimes in `x` become cyclic calendar inputs (day of week, day of year, hour).

    >>> from river import datasets, evaluate, metrics
    >>> import streamrnn

    >>> import statistics
    >>> from river import time_series

    The mean absolute error over the next 12 months, beside River's Holt-Winters:

    >>> model = streamrnn.RecurrentForecaster(seed=42)
    >>> evaluate.evaluate(datasets.AirlinePassengers(), model, metrics.MAE(), horizon=12,
    ...                   agg_func=statistics.mean)
    mean(MAE): 19.42...

    >>> holt_winters = time_series.HoltWinters(alpha=0.3, beta=0.1, gamma=0.6, seasonality=12)
    >>> evaluate.evaluate(datasets.AirlinePassengers(), holt_winters, metrics.MAE(), horizon=12,
    ...                   agg_func=statistics.mean)
    mean(MAE): 27.18...

    90% prediction intervals for the next three months:

    >>> [(round(lo), round(hi)) for lo, hi in model.forecast_interval(3, coverage=0.9)]
    [(408, 448), (384, 436), (434, 514)]

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
        differencing: bool = True,
        shrinkage: bool = True,
        embedding_size: int | None = None,
        seasonality: int | list | None = None,
        horizon: int = 12,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        self.seasonality = seasonality
        self.horizon = horizon
        super().__init__(
            cell=cell,
            hidden_size=hidden_size,
            num_layers=num_layers,
            truncation=truncation,
            update_every=update_every,
            optimizer=optimizer,
            lr=lr,
            clip_norm=clip_norm,
            loss=loss,
            huber_delta=huber_delta,
            normalize=normalize,
            embedding_size=embedding_size,
            dtype=dtype,
            seed=seed,
        )
        self.differencing = differencing
        self.shrinkage = shrinkage
        # per context (REGULAR, AFTER_LONG_GAP): decayed error of each expert, steps seen, and
        # the expert with the lowest error (cached: forecast(1) is on the hot path)
        self._shrink_err = np.zeros((2, N_EXPERTS))
        self._shrink_seen = [0, 0]
        self._shrink_best = [0, 0]
        self._level = None  # running median of the series
        self._level_deviation = 0.0  # mean absolute deviation from it
        self._last_time = None  # seconds, when x carries a datetime
        self._gap = None  # running median of the gaps between events, seconds
        self._features[Y_LAG] = 0
        self._features[D_LAG] = 1
        self._categorical += [False, False]
        self._last_y: float | None = None
        self._last_change: float | None = None
        # the classic experts (with shrinkage and differencing; see kernels.classic), and the
        # first values of the series while the periods may still change (they are replayed then)
        self._bank = None
        self._values = None

    def _check_params(self):
        super()._check_params()
        _periods_of(self.seasonality)
        if not (isinstance(self.horizon, int) and not isinstance(self.horizon, bool) and 1 <= self.horizon <= 1000):
            raise ValueError(f"horizon must be an integer from 1 to 1000, got {self.horizon!r}")

    @property
    def _fixed_periods(self) -> list | None:
        """The periods ``seasonality`` gives (None: to be found)."""
        return _periods_of(self.seasonality)

    @property
    def _classic(self) -> bool:
        return self.differencing and self.shrinkage

    @property
    def periods(self) -> list[int]:
        """The seasonal periods the classic experts use (given, or found so far)."""
        if self._bank is None:
            return list(self._fixed_periods or [])
        return [int(self._bank[classic.PERIOD0 + i]) for i in range(int(self._bank[classic.N_PERIODS]))]

    @classmethod
    def _unit_test_params(cls):
        yield {"cell": "lstm", "hidden_size": 8, "seed": 1}
        yield {"cell": "gru", "hidden_size": 8, "truncation": 4, "update_every": 2, "seed": 1}
        yield {"cell": "rnn", "hidden_size": 8, "num_layers": 2, "seed": 1}
        yield {"cell": "lstm", "hidden_size": 8, "seasonality": [3, 7], "horizon": 4, "seed": 1}

    def __getstate__(self):
        state = super().__getstate__()
        state["_shrink_err"] = self._shrink_err.tobytes()  # raw bytes: an array's pickle header is 150 more
        if self._bank is not None:
            state["_bank"] = self._bank.tobytes()
        if self._values is not None:
            state["_values"] = self._values[:self._seen()].tobytes()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._shrink_err = np.frombuffer(self._shrink_err, dtype=np.float64).reshape(2, N_EXPERTS).copy()
        if self._bank is not None:
            self._bank = np.frombuffer(self._bank, dtype=np.float64).copy()
        if self._values is not None:
            values = np.frombuffer(self._values, dtype=np.float64)
            self._values = np.zeros(seasons.DETECTION_VALUES)
            self._values[:values.shape[0]] = values

    _STATE_ARRAYS = {**RecurrentEstimator._STATE_ARRAYS, "_shrink_err": np.float64, "_bank": np.float64,
                     "_values": np.float64}

    def _seen(self) -> int:
        return 0 if self._bank is None else int(self._bank[classic.SEEN])

    def _check_state(self, state):
        super()._check_state(state)
        err = state["_shrink_err"]
        if err is None or err.shape != (2 * N_EXPERTS,) or not (np.isfinite(err).all() and err.min() >= 0):
            raise ValueError("bad expert errors")
        seen, best = state["_shrink_seen"], state["_shrink_best"]
        if not (type(seen) is list and len(seen) == 2 and all(type(v) is int and v >= 0 for v in seen)
                and type(best) is list and len(best) == 2
                and all(type(v) is int and 0 <= v < N_EXPERTS for v in best)):
            raise ValueError("bad expert counts")
        for name in ("_level", "_last_time", "_gap", "_last_y", "_last_change"):
            v = state[name]
            if v is not None and not (type(v) is float and math.isfinite(v)):
                raise ValueError(f"bad {name}")
        dev = state["_level_deviation"]
        if not (type(dev) is float and math.isfinite(dev) and dev >= 0):
            raise ValueError("bad _level_deviation")
        if state["_features"].get(Y_LAG) != 0 or state["_features"].get(D_LAG) != 1:
            raise ValueError("the lag inputs are not the first two")
        bank, values = state["_bank"], state["_values"]
        if bank is None:
            if values is not None or (self._classic and state["_last_y"] is not None):
                raise ValueError("classic experts missing")
            return
        if not self._classic:
            raise ValueError("classic experts without shrinkage")
        periods = classic.check_bank(bank, self.horizon, INTERVAL_RING)
        if self._fixed_periods is not None and periods != self._fixed_periods:
            raise ValueError("classic experts of other periods than the seasonality")
        seen = int(bank[classic.SEEN])
        if values is not None and not (self._fixed_periods is None and values.shape == (seen,)
                                       and seen <= seasons.DETECTION_VALUES and np.isfinite(values).all()):
            raise ValueError("bad first values")
        if values is None and self._fixed_periods is None and seen <= seasons.DETECTION_VALUES:
            raise ValueError("first values missing")

    def _inputs(self, x: dict | None, y_lag, change) -> dict:
        if x is not None and not isinstance(x, dict):
            raise BadInput(f"x must be a dict of features or None, got {type(x).__name__}")
        inputs = dict(x) if x else {}
        if any(name in inputs for name in RESERVED):
            raise BadInput(f"feature names {', '.join(map(repr, RESERVED))} are reserved")
        inputs[Y_LAG] = y_lag
        inputs[D_LAG] = change
        return inputs

    def _encode(self, x, y_lag, change, learn, season=True):
        """Fill the input buffers for the next step (with ``season``, the seasonal inputs from the
        classic experts' history: not for the later steps of a rollout); the common case (no
        exogenous features) skips the dict."""
        cfg = self._cfg
        ahead = season_change = None
        if season and self._bank is not None and self._bank[classic.N_PERIODS] != 0.0:
            a, b, known = classic.seasonal_inputs(self._bank)
            if known:
                ahead, season_change = a, b
        if not x and cfg is not None and cfg.slots == 0:
            if cfg.n_inputs == 2 and ahead is None:
                self._encoder.fill_dense((y_lag, change))  # the lag columns are 0 and 1
                return
            if cfg.n_inputs == 4 and self._features.get(SEASON_AHEAD) == 2 and self._features.get(SEASON_CHANGE) == 3:
                self._encoder.fill_dense((y_lag, change, ahead, season_change))
                return
        # the lag inputs are differences of accepted values: up to twice the limit the dict path
        # checks inputs against (the dense path above takes them as they are)
        limit = MAX_ABS[self.dtype]
        y_lag, change, ahead, season_change = (None if v is None else min(max(v, -limit), limit)
                                               for v in (y_lag, change, ahead, season_change))
        inputs = self._inputs(x, y_lag, change)
        if ahead is not None:
            inputs[SEASON_AHEAD] = ahead
            inputs[SEASON_CHANGE] = season_change
        self._vectorize(inputs, learn)

    def _learn_encoded(self, x, y_lag, change, target):
        self._encode(x, y_lag, change, learn=True)
        return self._learn_step(target)

    def learn_one(self, y: float, x: dict | None = None) -> None:
        y = self._check_target(y)
        when = _event_time(x)
        network, issued = math.nan, False  # the network's one-step forecast of y; whether it was issued
        if self.differencing:
            if self._last_y is not None:
                change = y - self._last_y
                self._learn_encoded(x, self._last_y, self._last_change, change)
                context = self._context(when)
                if self._classic:
                    network = self._last_y + self._network_change(self._expert(context))
                    issued = self._network_first(context)
                self._judge_experts(change, context)
                self._last_change = change
        else:
            self._learn_encoded(x, self._last_y, self._last_change, y)
            if self._last_y is not None:
                self._last_change = y - self._last_y
        self._follow(y, when)
        self._last_y = y
        if self._classic:
            self._observe(y, network, issued)

    def _observe(self, y, network, issued):
        """The classic experts learn ``y``; the periods are decided at the checkpoints."""
        if self._bank is None:
            self._bank = classic.new_bank(self.horizon, INTERVAL_RING, self._fixed_periods or [])
            if self._fixed_periods is None:
                self._values = np.zeros(seasons.DETECTION_VALUES)
        classic.observe(self._bank, y, network, issued)
        if self._values is None:
            return
        n = self._seen()
        self._values[n - 1] = y
        if n == CALENDAR_CHECKPOINT or n in seasons.CHECKPOINTS:
            periods = seasons.calendar_periods(self._gap)
            if periods is None and n in seasons.CHECKPOINTS:
                periods = seasons.autocorrelation_periods(self._values[:n])
            if periods is not None and periods != self.periods:
                self._bank = classic.new_bank(self.horizon, INTERVAL_RING, periods)
                for v in self._values[:n]:  # (the network's part in past forecasts is not replayed)
                    classic.observe(self._bank, v, math.nan, False)
        if n >= seasons.DETECTION_VALUES:
            self._values = None

    def _network_change(self, k) -> float:
        """The change expert ``k`` of the network's forecast from the last value (its prediction
        of the last learned step, made before it learned it)."""
        if k >= len(SHRINK_WEIGHTS):
            return self._level_step(k)
        return float(SHRINK_WEIGHTS[k] * E.last_output(self._mem, self._meta, self._scratch))

    def _level_step(self, k) -> float:
        """The change of level-blend expert ``k``: a step of the last value toward the robust level."""
        return float(LEVEL_BLENDS[k - len(SHRINK_WEIGHTS)] * (self._level - self._last_y))

    def _network_first(self, context) -> bool:
        """Whether the network's experts, rather than the classic ones, forecast the next step
        (see ``classic.network_first``); after a long gap, the network's experts once they have
        seen enough of them (the classic experts do not judge those steps apart)."""
        if self._bank is None:
            return True
        if context == AFTER_LONG_GAP and self._shrink_seen[context] >= SHRINK_WARMUP:
            return True
        return bool(classic.network_first(self._bank))

    def _judge_experts(self, change, context):
        toward = self._level - self._last_y
        self._shrink_best[context] = shrink.update(self._mem, self._meta, self._scratch, self._shrink_err[context],
                                                   SHRINK_WEIGHTS, LEVEL_BLENDS, toward, change)
        self._shrink_seen[context] += 1

    def _follow(self, y, when):
        """Move the running median of the series and of the gaps between events."""
        if self._level is None:
            self._level = y
        else:
            deviation = y - self._level
            self._level_deviation = (LEVEL_DEVIATION_DECAY * self._level_deviation
                                     + (1.0 - LEVEL_DEVIATION_DECAY) * abs(deviation))
            step = LEVEL_STEP * self._level_deviation
            self._level += step if deviation > 0 else -step if deviation < 0 else 0.0
        if when is None:
            return
        if self._last_time is not None:
            gap = when - self._last_time
            if gap > 0:
                if self._gap is None:
                    self._gap = gap
                elif gap != self._gap:
                    self._gap *= 1.0 + GAP_STEP if gap > self._gap else 1.0 - GAP_STEP
        self._last_time = when

    def _context(self, when) -> int:
        if when is None or self._gap is None:  # (a gap implies a last time)
            return REGULAR
        return AFTER_LONG_GAP if when - self._last_time > LONG_GAP * self._gap else REGULAR

    def _expert(self, context) -> int:
        """The expert to forecast with; persistence while the context has too few steps behind it
        (a rare long gap borrows the choice of the regular steps until it has its own)."""
        if context == AFTER_LONG_GAP and self._shrink_seen[context] < SHRINK_WARMUP:
            context = REGULAR
        if self._shrink_seen[context] < SHRINK_WARMUP:
            return 0
        return self._shrink_best[context]

    @property
    def shrink_weight(self) -> float:
        """The weight the forecaster currently gives the network's predicted change on a regular
        step (1 without shrinkage; 0 when persistence or the robust level is the best expert)."""
        if not (self.differencing and self.shrinkage):
            return 1.0
        k = self._expert(REGULAR)
        return float(SHRINK_WEIGHTS[k]) if k < len(SHRINK_WEIGHTS) else 0.0

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list:
        if xs is not None and len(xs) != horizon:
            raise BadInput(f"xs has {len(xs)} rows, expected horizon={horizon}")
        if horizon <= 0:
            return []
        if self._cfg is None:
            # nothing learned yet: persistence, or 0 before the first value; but x is refused as
            # it would be later (checked on a copy: filling the inputs would allocate the state)
            probe = copy.deepcopy(self)
            for x in xs or ():
                probe._encode(x, 0.0, 0.0, learn=False)
            return [self._last_y if self._last_y is not None else 0.0] * horizon
        if self._classic:
            return self._forecast_experts(horizon, xs)[0]
        return self._network_forecast(horizon, xs, 1.0)

    def _forecast_experts(self, horizon, xs):
        """The forecasts and how many steps ahead each is (None: 1 to ``horizon``)."""
        when = _event_time(xs[0]) if xs else None
        steps = self._steps_ahead(horizon, xs, when)
        if steps is None and horizon == 1:  # the hot path: one step, no arrays
            forecasts = [float(classic.first(self._bank))]
        else:
            out = np.empty(horizon)
            classic.predict(self._bank, np.arange(1, horizon + 1) if steps is None else steps, out)
            forecasts = out.tolist()
        context = self._context(when)
        first = steps is None or steps[0] == 1 or context == AFTER_LONG_GAP  # (a long gap: the network's case)
        for x in list(xs or [])[1 if first else 0:]:
            self._encode(x, 0.0, 0.0, learn=False, season=False)  # refused as the network would refuse it
        if first:
            # the network's one-step forecast, also when it is not the one issued: its forward is
            # then on offer to learn_one, which would compute it anyway
            k = self._expert(context)
            weight = float(SHRINK_WEIGHTS[k]) if k < len(SHRINK_WEIGHTS) else 0.0
            network = self._network_forecast(1, [xs[0]] if xs else None, weight)[0]
            if self._network_first(context):
                forecasts[0] = network if k < len(SHRINK_WEIGHTS) else self._last_y + self._level_step(k)
        return forecasts, steps

    def _steps_ahead(self, horizon, xs, when=None):
        """How many steps after the last value learned each forecast is for: from the dates of
        ``xs`` when they carry increasing ones and the series comes at a regular calendar step
        (on an irregular one a longer gap is not a step more); None for 1 to ``horizon``."""
        if not xs or self._last_time is None or when is None or seasons.calendar_periods(self._gap) is None:
            return None
        times = [when] + [_event_time(x) for x in list(xs)[1:]]
        if any(t is None for t in times) or any(b <= a for a, b in zip([self._last_time] + times, times)):
            return None
        steps = np.empty(horizon, dtype=np.int64)
        days = self._gap / 86400.0
        if 25 <= days <= 100:  # months and quarters are not all the same length: count months
            months = round(days / 30.44)
            last = _EPOCH + dt.timedelta(seconds=self._last_time)
            for i, t in enumerate(times):
                date = _EPOCH + dt.timedelta(seconds=t)
                steps[i] = max(1, round(((date.year - last.year) * 12 + date.month - last.month) / months))
        else:
            for i, t in enumerate(times):
                steps[i] = max(1, round((t - self._last_time) / self._gap))
        return None if horizon == 1 and steps[0] == 1 else steps

    def forecast_interval(self, horizon: int, coverage: float = 0.9, xs: list[dict] | None = None) -> list:
        """``(lower, upper)`` per step: the forecast widened by the ``coverage`` quantile of that
        horizon's recent absolute errors (split-conformal, over the last INTERVAL_RING forecasts
        issued), or of their ratios to the forecast while the series is positive, whichever is
        narrower (errors that scale with the level, in a series that grows, make ratios the
        calibrated ones). Unbounded until enough errors are known for the coverage asked
        (coverage / (1 - coverage) of them: 9 for 90%)."""
        return self.forecast_with_interval(horizon, coverage, xs)[1]

    def forecast_with_interval(self, horizon: int, coverage: float = 0.9, xs: list[dict] | None = None) -> tuple:
        """``(forecast(horizon, xs), forecast_interval(horizon, coverage, xs))`` from one pass over
        the experts and the network (calling both computes the forecasts twice)."""
        check_coverage(coverage)
        if not self._classic:
            raise ValueError("forecast_interval needs differencing=True and shrinkage=True")
        if horizon <= 0 or self._cfg is None or (xs is not None and len(xs) != horizon):
            # (forecast refuses a bad xs; nothing learned yet: no errors to take a quantile of)
            forecasts = self.forecast(horizon, xs)
            return forecasts, [(-math.inf, math.inf)] * len(forecasts)
        forecasts, steps = self._forecast_experts(horizon, xs)
        if steps is None:
            steps = np.arange(1, horizon + 1)
        raw = np.empty(horizon)
        classic.interval_radius(self._bank, steps, float(coverage), False, raw)
        ratio = np.full(horizon, np.inf)
        if self._bank[classic.POSITIVE] == 1.0:
            classic.interval_radius(self._bank, steps, float(coverage), True, ratio)
        out = []
        for f, r, q in zip(forecasts, raw.tolist(), ratio.tolist()):
            lower, upper = (f - r, f + r) if math.isfinite(r) else (-math.inf, math.inf)
            if f > 0 and math.isfinite(q) and f * (math.exp(min(q, 700.0)) - math.exp(-q)) < upper - lower:
                lower, upper = f * math.exp(-q), f * math.exp(q)
            out.append((lower, upper))
        return forecasts, out

    def _network_forecast(self, horizon, xs, weight) -> list:
        """The network rolled forward from its state, its changes scaled by ``weight``."""
        level = self._last_y if self._last_y is not None else 0.0
        if horizon == 1:  # nothing to feed back: one prediction from the current state
            self._encode(xs[0] if xs else None, self._last_y, self._last_change, learn=False)
            out = float(KERNELS[self.dtype].predict_event(self._mem, self._meta, self._scratch))
            return [level + weight * out] if self.differencing else [out]
        dtype = self._mem.dtype
        n = self._cfg.n_inputs
        X = np.zeros((horizon, n), dtype=dtype)
        present = np.zeros((horizon, n), dtype=dtype)
        tokens = np.full((horizon, self._cfg.slots), -1.0, dtype=dtype)
        for s in range(horizon):
            first = s == 0
            self._encode(xs[s] if xs else None, self._last_y if first else 0.0,
                         self._last_change if first else 0.0, learn=False, season=first)
            X[s] = self._encoder.xbuf
            present[s] = self._encoder.present
            tokens[s] = self._encoder.tokens
        out = np.empty(horizon)  # float64, like the one-step path: the level is not rounded
        E.rollout(self._mem, self._meta, self._scratch, X, present, tokens, 0, 1 if self.differencing else -1,
                  float(level), weight, out)
        return [float(v) for v in out]


def check_coverage(coverage) -> None:
    """ValueError unless ``coverage`` is one a forecaster's intervals can have."""
    if not (isinstance(coverage, (int, float)) and not isinstance(coverage, bool) and 0 < coverage <= MAX_COVERAGE):
        raise ValueError(f"coverage must be above 0 and at most {MAX_COVERAGE:.4f} (the last {INTERVAL_RING} "
                         f"errors per horizon bound no higher one), got {coverage!r}")


def _periods_of(seasonality) -> list | None:
    """The periods ``seasonality`` gives (None: to be found); ValueError if it is not one."""
    if seasonality is None:
        return None
    periods = [seasonality] if not isinstance(seasonality, (list, tuple)) else list(seasonality)
    if seasonality == 0 and not isinstance(seasonality, bool):
        periods = []
    if not (len(periods) <= classic.MAX_PERIODS and all(
            isinstance(m, int) and not isinstance(m, bool) and 2 <= m <= seasons.LONGEST for m in periods)):
        raise ValueError(f"seasonality must be None, 0, a period from 2 to {seasons.LONGEST} or a list of up "
                         f"to {classic.MAX_PERIODS}, got {seasonality!r}")
    return periods


_EPOCH = dt.datetime(1970, 1, 1)


def _event_time(x) -> float | None:
    """Seconds since the epoch of the first date or datetime among the values of ``x`` (naive
    datetimes read as UTC), or None."""
    if not x or not isinstance(x, dict):
        return None  # (not a dict: vectorising x says what is wrong)
    for value in x.values():
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                return value.timestamp()
            return (value - _EPOCH).total_seconds()
        if isinstance(value, dt.date):
            return (value - _EPOCH.date()).days * 86400.0
    return None
