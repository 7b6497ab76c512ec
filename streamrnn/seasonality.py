"""Seasonal periods of a series, found online: from the calendar when its events carry dates, from
its autocorrelation when they do not."""

from __future__ import annotations

import math

import numpy as np

DAY = 86400.0
# (typical gap between events, in days, with a tolerance; the periods in steps)
CALENDAR = (
    (30.44, 0.12, [12]),  # monthly: a year
    (91.31, 0.06, [4]),  # quarterly: a year
    (7.0, 0.03, [52]),  # weekly: a year
    (1.0, 0.03, [7]),  # daily: a week
    (1 / 24, 0.03, [24, 168]),  # hourly: a day and a week
)
# sub-hourly steps that divide a day: a day (a week would need thousands of values of state)
LONGEST = 1000

# The autocorrelation of the differenced series is judged at these counts of values, over all the
# values seen so far (the forecaster keeps the first DETECTION_VALUES and stops looking after them).
CHECKPOINTS = (48, 96, 192, 384, 768)
DETECTION_VALUES = CHECKPOINTS[-1]
# a period is a lag with at least this many seasons seen ...
MIN_SEASONS = 4
# ... whose autocorrelation is a local peak that rises above the trough before it by more than
# this, and more than NOISE_BAND standard errors of the autocorrelation at that lag; and where the changes over the lag are smaller than
# SEASONAL_SPREAD of those over half of it (a season's half-period changes are its largest; a
# random walk's grow with the lag, an autoregression's stay the same)
MIN_CORRELATION = 0.3
NOISE_BAND = 2.0
SEASONAL_SPREAD = 0.5


def calendar_periods(gap_seconds: float | None) -> list[int] | None:
    """The periods a typical gap between events implies, or None when the gap is not a calendar
    step with a season this knows: yearly data included (the calendar has no season within a
    year; a cycle of years, as in lynx or sunspot counts, is the autocorrelation's to find)."""
    if gap_seconds is None or not gap_seconds > 0:
        return None
    days = gap_seconds / DAY
    for step, tolerance, periods in CALENDAR:
        if abs(days / step - 1.0) <= tolerance:
            return list(periods)
    per_day = DAY / gap_seconds
    if gap_seconds < 3600 and abs(per_day - round(per_day)) < 1e-6 and 2 <= round(per_day) <= LONGEST:
        return [int(round(per_day))]
    return None


def autocorrelation_periods(values: np.ndarray) -> list[int]:
    """The period of ``values`` from its autocorrelation once a straight line is taken out: the
    shortest lag among the local peaks that rise clearly from the trough before them (a random
    walk's autocorrelation decays without rising again) and reach 80% of the highest rise (a
    season's multiples peak too); ``[]`` when no lag stands out."""
    values = values[np.isfinite(values)]
    n = values.shape[0]
    longest = min(n // MIN_SEASONS, LONGEST)
    if longest < 2:
        return []
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, values, 1)
    centred = values - (slope * t + intercept)
    var = float(centred @ centred)
    if not var > 1e-12 * max(float(values @ values), 1e-300):
        return []
    acf = np.array([1.0] + [float(centred[:-lag] @ centred[lag:]) / var for lag in range(1, longest + 2)])
    # Bartlett's standard error of the autocorrelation at each lag: a persistent series (a random
    # walk, an autoregression near 1) has autocorrelations that wander far at long lags
    spread = np.sqrt((1.0 + 2.0 * np.concatenate(([0.0], np.cumsum(acf[1:] ** 2)))) / n)
    rises = {}
    for lag in range(2, longest + 1):
        if acf[lag] >= acf[lag - 1] and acf[lag] >= acf[lag + 1]:
            rise = acf[lag] - acf[1:lag].min()
            if rise > max(MIN_CORRELATION, NOISE_BAND * spread[lag - 1]) and _spread(values, lag) < SEASONAL_SPREAD * _spread(values, lag // 2):
                rises[lag] = rise
    if not rises:
        return []
    top = max(rises.values())
    lag = min(lag for lag, rise in rises.items() if rise >= 0.8 * top)
    # a noisy peak may sit a step or two off the period: its farthest clear multiple says it
    # more precisely (the peak near j periods is off by as much, but that is j times less per period)
    for j in range(min(longest // lag, (lag - 1) // 2), 1, -1):  # (farther, the window meets the next multiple)
        near = range(max(j * lag - j, 2), min(j * lag + j, longest) + 1)
        if not near:
            continue
        peak = max(near, key=lambda k: acf[k])
        if acf[peak] > max(MIN_CORRELATION, NOISE_BAND * spread[peak - 1]):
            return [int(round(peak / j))]
    return [lag]


def _spread(values, lag):
    """Mean square of the changes over ``lag`` steps."""
    d = values[lag:] - values[:-lag]
    return float(d @ d) / d.shape[0]
