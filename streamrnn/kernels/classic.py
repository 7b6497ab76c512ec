"""Classic forecasters as experts of the forecaster (see :mod:`streamrnn.forecaster`).

Persistence, a damped trend, a reversion to a moving mean (an online AR(1) of the deviations from
it), the last change carried on as the changes correlate (an online AR(1) of the changes), the
random walk with the average change since the first value (the "drift method"; not on the logs:
a series that rose by orders of magnitude in its first steps would extrapolate that as a growth
rate), and per seasonal period the seasonal naive forecast (alone and with a seasonal drift), the
last value plus last season's change over the same steps, and damped additive Holt-Winters; the trend, drift and Holt-Winters experts also
run on the logs of the series while every value seen is positive (a multiplicative season, growth
in percent). Every expert forecasts horizons 1..H from every origin; each forecast is scored when
its target arrives, so every horizon has its own decayed absolute error per expert and its own
best expert. The residuals of the forecasts actually issued are kept per horizon, for conformal
prediction intervals.

Everything lives in one float64 array, the *bank*, whose header gives its layout (:func:`offsets`).
An expert that cannot forecast yet (a season not seen in full, logs of a series that went to zero
or below) forecasts persistence: its errors then equal persistence's, and persistence, first,
wins ties. The smoothing constants are fixed (not fitted per series): the selection among the
experts, per horizon, is what adapts.
"""

import math

import numpy as np

from ._jit import kernel

# header: horizons, residual ring length, periods (0..MAX_PERIODS), the periods, history length,
# values seen, 1 while every value seen is positive
HORIZONS, RING, N_PERIODS, PERIOD0, PERIOD1, HISTORY, SEEN, POSITIVE = range(8)
HEADER = 8
MAX_PERIODS = 2

# experts: the global ones, then PER_PERIOD for each period
PERSISTENCE, TREND, TREND_LOG, REVERSION, MOMENTUM, WALK_DRIFT = range(6)
GLOBAL_EXPERTS = 6
SEASONAL_NAIVE, DRIFT, DRIFT_LOG, SEASONAL_CHANGE, WINTERS, WINTERS_LOG = range(6)
PER_PERIOD = 6
EXPERT_NAMES = ("persistence", "damped trend", "damped trend (log)", "reversion to the mean",
                "AR(1) of the changes", "random walk + drift")
PERIOD_EXPERT_NAMES = ("seasonal naive", "seasonal naive + drift", "seasonal naive + drift (log)",
                       "last value + last season's change", "Holt-Winters", "Holt-Winters (log)")

# scalars: the trend's level and slope (raw, log); the moving mean, and the decayed sums of the
# products of successive deviations from it and of their squares; the same two for the changes;
# the network's one-step forecast's decayed absolute error and its square sum of differences with
# persistence's (see ``squares`` in offsets); the first value and the sum of the squared changes
# since; per period: drift (raw, log) and Holt-Winters' level and slope (raw, log)
GLOBAL_SCALARS = 13
NETWORK_ERROR = 9
FIRST_VALUE, SQUARED_CHANGES = 11, 12
# (the changes' correlation is taken within this: an AR(1) of changes at 1 is a runaway trend)
MOMENTUM_BOUND = 0.9
PERIOD_SCALARS = 6

TREND_ALPHA, TREND_BETA, TREND_PHI = 0.5, 0.05, 0.9
WINTERS_ALPHA, WINTERS_BETA, WINTERS_GAMMA, WINTERS_PHI = 0.3, 0.05, 0.3, 0.98
DRIFT_RATE = 0.1
# the random walk's drift is taken while the mean change is this many standard errors from zero
# (a few steps that happened to rise are no growth to extrapolate 12 steps ahead); not 2: the test
# is repeated at every step, and a series without drift crosses 2 at some of them, where the
# expert then leads for a while
DRIFT_SIGNIFICANCE = 3.0
# the moving mean's rate; the decay of the sums both AR(1) coefficients come from
MEAN_RATE, AR_DECAY = 0.05, 0.99
# the experts' error sums decay as the network's experts' do: one forecaster compares the two
from .shrink import DECAY  # noqa: E402
# a horizon picks its own expert once this many of its forecasts were scored (before: the choice
# of the horizon below it; horizon 1 before: persistence)
WARMUP = 8
# another expert than persistence is chosen only when its mean absolute error is below
# persistence's by more than SIGNIFICANCE standard errors of the mean difference (a
# Diebold-Mariano test over the decayed sums): what beats persistence by a little over a few steps,
# or on a spiky series where the differences are wild, usually did so by chance
SIGNIFICANCE = 1.0
# prediction intervals need this many residuals at a horizon (else: horizon 1's, widened)
MIN_RESIDUALS = 4


@kernel
def n_experts(n_periods):
    return GLOBAL_EXPERTS + PER_PERIOD * n_periods


@kernel
def offsets(horizons, ring, n_periods, period0, period1, history):
    """Starts of the bank's blocks: scalars, best expert per horizon, history ring, seasonal
    states (raw then log, per period), pending forecasts ``[h - 1, origin mod h, expert]`` (horizon
    h keeps those of the last h origins, whose targets are still to come; the last column: the
    forecast issued), errors ``[h - 1, expert]`` (decayed sums of absolute errors), squares
    ``[h - 1, expert]`` (decayed sums of the squared differences between persistence's absolute
    error and the expert's), residuals ``[raw|log, h - 1, slot]``; and the end."""
    e = n_experts(n_periods)
    scalars = HEADER
    best = scalars + GLOBAL_SCALARS + PERIOD_SCALARS * n_periods
    hist = best + horizons
    seasonal = hist + history
    pending = seasonal + 2 * (period0 + period1)
    errors = pending + horizons * (horizons + 1) // 2 * (e + 1)
    squares = errors + horizons * e
    residuals = squares + horizons * e
    end = residuals + 2 * horizons * ring
    return scalars, best, hist, seasonal, pending, errors, squares, residuals, end


@kernel
def _layout(bank):
    """The offsets of ``bank``'s blocks, from its header."""
    return offsets(int(bank[HORIZONS]), int(bank[RING]), int(bank[N_PERIODS]), int(bank[PERIOD0]),
                   int(bank[PERIOD1]), int(bank[HISTORY]))


@kernel
def _pending_row(o, H, E, origin, h):
    """Where the forecasts made at ``origin`` for ``h`` steps ahead start (E experts', then the
    one issued)."""
    return o[4] + (h * (h - 1) // 2 + origin % h) * (E + 1)


def new_bank(horizons: int, ring: int, periods) -> np.ndarray:
    """An empty bank for ``periods`` (at most MAX_PERIODS, each at least 2)."""
    periods = list(periods)
    p0 = periods[0] if periods else 0
    p1 = periods[1] if len(periods) > 1 else 0
    history = max(periods, default=2) + 1
    end = offsets(horizons, ring, len(periods), p0, p1, history)[-1]
    bank = np.zeros(end)
    bank[:HEADER] = (horizons, ring, len(periods), p0, p1, history, 0, 1)
    return bank


def check_bank(bank: np.ndarray, horizons: int, ring: int) -> list:
    """Raise ValueError unless ``bank`` is one :func:`new_bank` could have made and
    :func:`observe` filled; returns its periods."""
    if bank.ndim != 1 or bank.shape[0] < HEADER or not np.isfinite(bank).all():
        raise ValueError("bad classic experts")
    head = bank[:HEADER]
    if np.any(head != np.floor(head)) or head[HORIZONS] != horizons or head[RING] != ring:
        raise ValueError("classic experts of another configuration")
    p = int(head[N_PERIODS])
    periods = [int(head[PERIOD0 + i]) for i in range(p)] if 0 <= p <= MAX_PERIODS else None
    if (periods is None or any(m < 2 or m > 100_000 for m in periods) or any(head[PERIOD0 + i] != 0 for i in range(p, 2))
            or head[HISTORY] != max(periods, default=2) + 1 or head[SEEN] < 0 or head[POSITIVE] not in (0, 1)):
        raise ValueError("bad classic experts header")
    p0 = periods[0] if periods else 0
    p1 = periods[1] if p > 1 else 0
    o = offsets(horizons, ring, p, p0, p1, int(head[HISTORY]))
    if bank.shape[0] != o[-1]:
        raise ValueError("classic experts of the wrong size")
    best = bank[o[1]:o[2]]
    if best.min(initial=0) < 0 or best.max(initial=0) >= n_experts(p):
        raise ValueError("bad best experts")
    sums = np.concatenate((bank[o[5]:o[8]], bank[o[0] + NETWORK_ERROR:o[0] + NETWORK_ERROR + 2]))  # errors to residuals
    if sums.min(initial=0) < 0:
        raise ValueError("negative errors")
    return periods


@kernel
def _damping(phi, h):
    """phi + phi^2 + ... + phi^h"""
    return phi * (1.0 - phi ** h) / (1.0 - phi)


# the damping of the fixed constants for the horizons a bank can have (a power per expert and
# horizon on every event costs more than all the rest of a forecast)
_TREND_DAMPING = np.cumsum(TREND_PHI ** np.arange(1, 1002))
_WINTERS_DAMPING = np.cumsum(WINTERS_PHI ** np.arange(1, 1002))


@kernel
def _damped(table, phi, h):
    return table[h - 1] if h <= table.shape[0] else _damping(phi, h)


@kernel
def _forecast(bank, o, expert, t, h):
    """Expert ``expert``'s forecast ``h`` steps after origin ``t`` (the last value seen)."""
    scalars, best, hist, seasonal, pending, errors, squares, residuals, end = o
    L = int(bank[HISTORY])
    last = bank[hist + t % L]
    positive = bank[POSITIVE] == 1.0
    if expert == PERSISTENCE:
        return last
    if expert == TREND:
        return bank[scalars] + _damped(_TREND_DAMPING, TREND_PHI, h) * bank[scalars + 1]
    if expert == TREND_LOG:
        if not positive:
            return last
        return math.exp(bank[scalars + 2] + _damped(_TREND_DAMPING, TREND_PHI, h) * bank[scalars + 3])
    if expert == REVERSION:
        return bank[scalars + 4] + _reversion(bank, scalars) ** h * (last - bank[scalars + 4])
    if expert == MOMENTUM:
        if t < 1 or bank[scalars + 8] <= 0.0:
            return last
        theta = min(max(bank[scalars + 7] / bank[scalars + 8], -MOMENTUM_BOUND), MOMENTUM_BOUND)
        return last + _damping(theta, h) * (last - bank[hist + (t - 1) % L])
    if expert == WALK_DRIFT:
        return last + h * _walk_drift(bank, scalars, last, t)
    p = (expert - GLOBAL_EXPERTS) // PER_PERIOD
    kind = (expert - GLOBAL_EXPERTS) % PER_PERIOD
    m = int(bank[PERIOD0 + p])
    if t + 1 < m:  # not a whole season seen yet
        return last
    if (kind == DRIFT_LOG or kind == WINTERS_LOG) and not positive:
        return last
    k = (h - 1) // m + 1  # seasons back to the latest value of the same phase
    same_phase = bank[hist + (t + h - k * m) % L]
    ps = scalars + GLOBAL_SCALARS + PERIOD_SCALARS * p
    if kind == SEASONAL_NAIVE:
        return same_phase
    if kind == DRIFT:
        return same_phase + k * bank[ps]
    if kind == DRIFT_LOG:
        return math.exp(math.log(same_phase) + k * bank[ps + 1])
    if kind == SEASONAL_CHANGE:
        if t < k * m:
            return last
        return last + same_phase - bank[hist + (t - k * m) % L]
    start = seasonal + (0 if p == 0 else 2 * int(bank[PERIOD0]))
    if kind == WINTERS:
        return bank[ps + 2] + _damped(_WINTERS_DAMPING, WINTERS_PHI, h) * bank[ps + 3] + bank[start + (t + h) % m]
    return math.exp(bank[ps + 4] + _damped(_WINTERS_DAMPING, WINTERS_PHI, h) * bank[ps + 5] + bank[start + m + (t + h) % m])


@kernel
def _walk_drift(bank, scalars, last, t):
    """The mean change since the first value, or 0 while it is not significantly apart from 0."""
    if t < 2:
        return 0.0
    mean = (last - bank[scalars + FIRST_VALUE]) / t
    variance = max(bank[scalars + SQUARED_CHANGES] / t - mean * mean, 0.0)
    return mean if mean * mean * t > DRIFT_SIGNIFICANCE * DRIFT_SIGNIFICANCE * variance else 0.0


@kernel
def _reversion(bank, scalars):
    """The AR(1) coefficient of the deviations from the moving mean, in [0, 1]."""
    if bank[scalars + 6] <= 0.0:
        return 1.0
    return min(max(bank[scalars + 5] / bank[scalars + 6], 0.0), 1.0)


@kernel
def _holt(bank, at, z, alpha, beta, phi):
    """Damped Holt step of the level and slope at ``bank[at]``, ``bank[at + 1]`` toward ``z``
    (``z`` net of its seasonal component)."""
    level, slope = bank[at], bank[at + 1]
    new = alpha * z + (1.0 - alpha) * (level + phi * slope)
    bank[at + 1] = beta * (new - level) + (1.0 - beta) * phi * slope
    bank[at] = new


@kernel
def _learn(bank, o, y, t):
    """Fold value ``y`` at time ``t`` into every expert's state."""
    scalars, best, hist, seasonal, pending, errors, squares, residuals, end = o
    L = int(bank[HISTORY])
    if y <= 0.0:
        bank[POSITIVE] = 0.0
    positive = bank[POSITIVE] == 1.0
    z = math.log(y) if positive else 0.0
    if t == 0:
        bank[scalars], bank[scalars + 1] = y, 0.0
        bank[scalars + 2], bank[scalars + 3] = z, 0.0
        bank[scalars + 4] = y
        bank[scalars + FIRST_VALUE] = y
    else:
        _holt(bank, scalars, y, TREND_ALPHA, TREND_BETA, TREND_PHI)
        if positive:
            _holt(bank, scalars + 2, z, TREND_ALPHA, TREND_BETA, TREND_PHI)
        before = bank[hist + (t - 1) % L] - bank[scalars + 4]
        bank[scalars + 4] += MEAN_RATE * (y - bank[scalars + 4])
        after = y - bank[scalars + 4]
        bank[scalars + 5] = AR_DECAY * bank[scalars + 5] + before * after
        bank[scalars + 6] = AR_DECAY * bank[scalars + 6] + before * before
        change = y - bank[hist + (t - 1) % L]
        bank[scalars + SQUARED_CHANGES] += change * change
        if t >= 2:
            previous = bank[hist + (t - 1) % L] - bank[hist + (t - 2) % L]
            bank[scalars + 7] = AR_DECAY * bank[scalars + 7] + change * previous
            bank[scalars + 8] = AR_DECAY * bank[scalars + 8] + previous * previous
    start = seasonal
    for p in range(int(bank[N_PERIODS])):
        m = int(bank[PERIOD0 + p])
        ps = scalars + GLOBAL_SCALARS + PERIOD_SCALARS * p
        raw_season = bank[start:start + m]
        log_season = bank[start + m:start + 2 * m]
        start += 2 * m
        if t >= m:
            before = bank[hist + (t - m) % L]
            change = y - before
            log_change = z - math.log(before) if positive else 0.0
            rate = 1.0 if t == m else DRIFT_RATE
            bank[ps] += rate * (change - bank[ps])
            bank[ps + 1] += rate * (log_change - bank[ps + 1])
            phase = t % m
            _holt(bank, ps + 2, y - raw_season[phase], WINTERS_ALPHA, WINTERS_BETA, WINTERS_PHI)
            raw_season[phase] += WINTERS_GAMMA * (y - bank[ps + 2] - raw_season[phase])
            if positive:
                _holt(bank, ps + 4, z - log_season[phase], WINTERS_ALPHA, WINTERS_BETA, WINTERS_PHI)
                log_season[phase] += WINTERS_GAMMA * (z - bank[ps + 4] - log_season[phase])
        elif t == m - 1:  # the first season: the level is its mean, the seasonal its deviations
            bank[hist + t % L] = y
            raw_mean, log_mean = 0.0, 0.0
            for i in range(m):
                raw_mean += bank[hist + i % L]
                if positive:
                    log_mean += math.log(bank[hist + i % L])
            raw_mean /= m
            log_mean /= m
            for i in range(m):
                raw_season[i] = bank[hist + i % L] - raw_mean
                log_season[i] = math.log(bank[hist + i % L]) - log_mean if positive else 0.0
            bank[ps + 2], bank[ps + 3] = raw_mean, 0.0
            bank[ps + 4], bank[ps + 5] = log_mean, 0.0
    bank[hist + t % L] = y


@kernel
def _level(n, coverage):
    """Which of ``n`` sorted residuals (0-based) is the conformal radius at ``coverage``; -1 when
    none is: a new residual is below all ``n`` with probability n / (n + 1) only, so below
    ``coverage`` / (1 - ``coverage``) residuals the interval is unbounded."""
    k = int(math.ceil((n + 1) * coverage - 1e-9))  # (10 * 0.9 is 9.000000000000002)
    return max(k, 1) - 1 if k <= n else -1


@kernel
def _significant(persistence_error, error, squares, n):
    """Whether an expert's decayed error sum ``error`` is below persistence's by more than
    SIGNIFICANCE standard errors, ``squares`` being the decayed sum of the squared differences of
    their absolute errors over the ``n`` steps scored."""
    if n < WARMUP:
        return False
    weight = (1.0 - DECAY ** n) / (1.0 - DECAY)
    weight2 = (1.0 - DECAY ** (2 * n)) / (1.0 - DECAY * DECAY)
    mean = (persistence_error - error) / weight
    variance = max(squares / weight - mean * mean, 0.0)
    return mean > SIGNIFICANCE * math.sqrt(variance * weight2) / weight


@kernel
def observe(bank, y, network, network_issued):
    """Score the pending forecasts of ``y`` (the next value), learn it, pick each horizon's expert
    and forecast from it. ``network`` is the network's one-step forecast of ``y`` (NaN before it
    has one), scored beside the experts'; with ``network_issued`` it was the forecast issued, whose
    residual the intervals take."""
    H = int(bank[HORIZONS])
    R = int(bank[RING])
    o = _layout(bank)
    scalars, best, hist, seasonal, pending, errors, squares, residuals, end = o
    E = n_experts(int(bank[N_PERIODS]))
    t = int(bank[SEEN])  # this value's time
    positive = bank[POSITIVE] == 1.0 and y > 0.0
    for h in range(1, min(H, t) + 1):
        origin = t - h
        row = _pending_row(o, H, E, origin, h)
        err = errors + (h - 1) * E
        sq = squares + (h - 1) * E
        base = abs(y - bank[row])
        for e in range(E):
            miss = abs(y - bank[row + e])
            bank[err + e] = DECAY * bank[err + e] + miss
            bank[sq + e] = DECAY * bank[sq + e] + (base - miss) ** 2
        issued = bank[row + E]
        if h == 1:
            miss = base if math.isnan(network) else abs(y - network)
            at = scalars + NETWORK_ERROR
            bank[at] = DECAY * bank[at] + miss
            bank[at + 1] = DECAY * bank[at + 1] + (base - miss) ** 2
            if network_issued and not math.isnan(network):
                issued = network
        slot = origin % R
        bank[residuals + (h - 1) * R + slot] = abs(y - issued)
        if positive:
            bank[residuals + (H + h - 1) * R + slot] = abs(math.log(y) - math.log(max(issued, 1e-300)))
    _learn(bank, o, y, t)
    bank[SEEN] = t + 1
    for h in range(1, H + 1):
        err = errors + (h - 1) * E
        choice = 0 if h == 1 else int(bank[best + h - 2])
        scored = t + 1 - h
        if scored >= WARMUP:
            choice = 0
            for e in range(1, E):
                if bank[err + e] < bank[err + choice]:
                    choice = e
            if not _significant(bank[err], bank[err + choice], bank[squares + (h - 1) * E + choice], scored):
                choice = 0
        bank[best + h - 1] = choice
        row = _pending_row(o, H, E, t, h)
        for e in range(E):
            bank[row + e] = _forecast(bank, o, e, t, h)
        bank[row + E] = bank[row + choice]


@kernel
def seasonal_inputs(bank):
    """For the network: the value one season before the next step less the last value (the
    seasonal naive forecast's change) and that season's change over the same step, for the first
    period; ``(0, 0, False)`` before a whole season and a step are seen, or without a period."""
    if bank[N_PERIODS] == 0.0:
        return 0.0, 0.0, False
    m = int(bank[PERIOD0])
    t = int(bank[SEEN]) - 1  # the last value's time
    if t < m:
        return 0.0, 0.0, False
    o = _layout(bank)
    L = int(bank[HISTORY])
    hist = o[2]
    ahead = bank[hist + (t + 1 - m) % L]
    return ahead - bank[hist + t % L], ahead - bank[hist + (t - m) % L], True


@kernel
def first(bank):
    """The chosen expert's forecast of the next value."""
    H = int(bank[HORIZONS])
    o = _layout(bank)
    E = n_experts(int(bank[N_PERIODS]))
    t = int(bank[SEEN]) - 1
    return bank[_pending_row(o, H, E, t, 1) + E]


@kernel
def network_first(bank):
    """Whether the network's one-step forecast has a lower recent error than the chosen classic
    expert's, and significantly lower than persistence's."""
    o = _layout(bank)
    at = o[0] + NETWORK_ERROR
    errors = o[5]
    return bank[at] < bank[errors + int(bank[o[1]])] and _significant(
        bank[errors], bank[at], bank[at + 1], int(bank[SEEN]) - 1)


@kernel
def predict(bank, steps, out):
    """The chosen experts' forecasts ``steps[i]`` values ahead (``steps`` ≥ 1; beyond H: horizon
    H's expert)."""
    H = int(bank[HORIZONS])
    o = _layout(bank)
    best = o[1]
    E = n_experts(int(bank[N_PERIODS]))
    t = int(bank[SEEN]) - 1
    for i in range(steps.shape[0]):
        s = steps[i]
        expert = int(bank[best + min(s, H) - 1])
        if s <= H:
            out[i] = bank[_pending_row(o, H, E, t, s) + expert]
        else:
            out[i] = _forecast(bank, o, expert, t, s)


@kernel
def interval_radius(bank, steps, coverage, log_scale, out):
    """Per step ``steps[i]`` ahead: the conformal radius of a ``coverage`` interval around the issued
    forecast, from that horizon's residuals (raw, or logs with ``log_scale``); where a horizon has
    too few, horizon 1's widened by sqrt(s); beyond H, horizon H's widened by s / H (its expert's
    forecasts that far were never scored: the bound of a missed trend's, whose errors grow
    linearly); inf without residuals enough."""
    H = int(bank[HORIZONS])
    R = int(bank[RING])
    o = _layout(bank)
    t = int(bank[SEEN])
    first = _radius(bank, o[7], R, H, 1, t, coverage, log_scale)
    for i in range(steps.shape[0]):
        s = steps[i]
        h = min(s, H)
        radius = first if h == 1 else _radius(bank, o[7], R, H, h, t, coverage, log_scale)
        if math.isinf(radius):
            out[i] = first * math.sqrt(s)
        else:
            out[i] = radius * (s / H if s > H else 1.0)


@kernel
def _radius(bank, residuals, R, H, h, t, coverage, log_scale):
    """The conformal quantile of horizon ``h``'s residuals at ``coverage`` (inf with too few)."""
    n = min(max(t - h, 0), R)
    k = _level(n, coverage)
    if n < MIN_RESIDUALS or k < 0:
        return np.inf
    start = residuals + ((H if log_scale else 0) + h - 1) * R
    return np.sort(bank[start:start + n])[k]
