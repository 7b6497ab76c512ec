"""Multi-step forecasts and 90% prediction intervals on the classic series (``bench_quality.py
--set classic``), every model in the same run.

After learning value t, every model forecasts t+1 .. t+H (streamrnn gets the dates of those steps
in ``xs`` where the series has dates; River's models get no inputs). The score of a horizon h is
the MAE of all its forecasts; a model's score is the mean over h = 1..H. From the first value on:
every model meets the same cold start (River's Holt-Winters answers with persistence while it
cannot forecast yet). (``river.evaluate.evaluate(horizon=...)`` scores the forecasts made before
learning value t against t+1 .. t+H, one step off; the doctest of RecurrentForecaster uses it as
River's users do.)

Intervals: streamrnn's ``forecast_interval``; beside it Holt-Winters' forecast widened by the 90%
quantile of its own last 48 absolute errors at that horizon (split-conformal, as streamrnn does).
Coverage is counted over every forecast from the first finite interval a model gives on: an
unbounded one later (too few residuals at a horizon, or the level adapted to 1) counts as covering,
and the share of them is printed; the mean width is over the finite ones.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from river import time_series

import streamrnn

COVERAGE = 0.9
RING = 48


class Persistence:
    name = "persistence"

    def __init__(self, series):
        self.last = 0.0

    def learn(self, t, x, y):
        self.last = y

    def forecast(self, t, xs, H):
        return [self.last] * H


class SeasonalNaive:
    name = "seasonal naive"

    def __init__(self, series):
        self.m = series.season
        self.values = []

    def learn(self, t, x, y):
        self.values.append(y)

    def forecast(self, t, xs, H):
        v, m = self.values, self.m
        return [v[-1] if len(v) < m else v[len(v) - 1 + h - ((h - 1) // m + 1) * m] for h in range(1, H + 1)]


class River:
    def __init__(self, name, model):
        self.name, self.model, self.last = name, model, 0.0

    def learn(self, t, x, y):
        self.last = y
        if self.model is None:
            return
        try:
            self.model.learn_one(y)
        except (ZeroDivisionError, ValueError, OverflowError):  # HoltWinters' first season has a zero in it
            self.model = None  # persistence from then on

    def forecast(self, t, xs, H):
        if self.model is None:
            return [self.last] * H
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self.model.forecast(H)
            if len(out) == H and all(math.isfinite(v) for v in out):
                return [float(v) for v in out]
        except (IndexError, ValueError, ZeroDivisionError, TypeError, OverflowError):
            pass
        return [self.last] * H


def holt_winters(series):
    m = series.season
    if m:
        return River("river HoltWinters", time_series.HoltWinters(alpha=0.3, beta=0.1, gamma=0.6, seasonality=m))
    return River("river HoltWinters", time_series.HoltWinters(alpha=0.5, beta=0.01))


def snarimax_seasonal(series):
    m = series.season or 1
    return River("river SNARIMAX(1,1,1)(1,1,1)m", time_series.SNARIMAX(p=1, d=1, q=1, m=m, sp=1 if series.season else 0,
                                                                      sd=1 if series.season else 0,
                                                                      sq=1 if series.season else 0))


def snarimax_plain(series):
    return River("river SNARIMAX(2,1,1)", time_series.SNARIMAX(p=2, d=1, q=1))


class Streamrnn:
    name = "streamrnn Forecaster"

    def __init__(self, series, with_dates=True):
        self.model = streamrnn.RecurrentForecaster(seed=0)
        self.series = series if with_dates else None

    def _x(self, t):
        if self.series is None or self.series.times is None or t >= len(self.series.times):
            return None
        return {"time": self.series.times[t]}

    def learn(self, t, x, y):
        self.model.learn_one(y, self._x(t))

    def _xs(self, t, H):
        xs = [self._x(t + h) for h in range(1, H + 1)]
        return xs if all(x is not None for x in xs) else None

    def forecast(self, t, xs, H):
        return self.model.forecast(H, self._xs(t, H))

    def interval(self, t, H):
        return self.model.forecast_interval(H, COVERAGE, self._xs(t, H))


# statsforecast's fits take minutes per refit on the long series with long seasons (taylor's 48,
# co2's 52): the reference runs on the series up to this long
REFERENCE_LONGEST = 1000


class StatsForecast:
    """statsforecast's AutoARIMA / AutoETS, refit on the expanding window (each time the window
    has grown by a quarter, at most every 200 values), applied to the latest values in between
    (``forward``, no refit)."""

    def __init__(self, name, make, series):
        self.name, self.make, self.season = name, make, series.season or 1
        self.values, self.model, self.fit_at = [], None, 0

    def learn(self, t, x, y):
        self.values.append(y)
        n = len(self.values)
        if n >= max(2 * self.season + 2, 12) and (self.model is None or n >= min(1.25 * self.fit_at, self.fit_at + 200)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.model = self.make(self.season).fit(np.array(self.values))
                self.fit_at = n
            except Exception:  # noqa: BLE001 (a failed fit keeps the previous model)
                pass

    def forecast(self, t, xs, H):
        if self.model is None:
            return [self.values[-1]] * H
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self.model.forward(y=np.array(self.values), h=H)["mean"]
            if all(math.isfinite(v) for v in out):
                return [float(v) for v in out]
        except Exception:  # noqa: BLE001
            pass
        return [self.values[-1]] * H


def auto_arima(series):
    from statsforecast.models import AutoARIMA

    return StatsForecast("statsforecast AutoARIMA", lambda m: AutoARIMA(season_length=m), series)


def auto_ets(series):
    from statsforecast.models import AutoETS

    return StatsForecast("statsforecast AutoETS", lambda m: AutoETS(season_length=m), series)


def score(series, model, H):
    """``(mean MAE over h = 1..H, MAE at h = 1, seconds, interval stats)``; interval stats is
    ``(covered, counted, total width, finite)`` or None."""
    n = len(series.values)
    errors, counts = np.zeros(H), np.zeros(H)
    covered = counted = finite = 0
    width = 0.0
    started = False
    conformal = isinstance(model, River) and model.name == "river HoltWinters"
    history = [[] for _ in range(H)]  # Holt-Winters' own absolute errors per horizon
    pending = []
    has_interval = hasattr(model, "interval") or conformal
    start = time.perf_counter()
    for t, y in enumerate(series.values):
        if conformal:
            for origin, forecasts in pending:
                h = t - origin
                if 1 <= h <= H:
                    history[h - 1] = (history[h - 1] + [abs(y - forecasts[h - 1])])[-RING:]
            pending = [(o, f) for o, f in pending if t - o < H]
        model.learn(t, None, y)
        if t + 1 >= n:
            break
        forecasts = model.forecast(t, None, H)
        if conformal:
            pending.append((t, forecasts))
        intervals = None
        if hasattr(model, "interval"):
            intervals = model.interval(t, H)
        elif conformal:
            intervals = []
            for h in range(H):
                r = history[h]
                if len(r) >= 4:
                    q = sorted(r)[min(math.ceil((len(r) + 1) * COVERAGE), len(r)) - 1]
                    intervals.append((forecasts[h] - q, forecasts[h] + q))
                else:
                    intervals.append((-math.inf, math.inf))
        for h in range(1, min(H, n - 1 - t) + 1):
            target = series.values[t + h]
            errors[h - 1] += abs(target - forecasts[h - 1])
            counts[h - 1] += 1
            if intervals is not None:
                lo, hi = intervals[h - 1]
                bounded = math.isfinite(lo) and math.isfinite(hi)
                started = started or bounded
                if started:
                    counted += 1
                    covered += lo <= target <= hi
                    if bounded:
                        finite += 1
                        width += hi - lo
    secs = time.perf_counter() - start
    mae = errors / np.maximum(counts, 1)
    return float(mae.mean()), float(mae[0]), secs, (covered, counted, width, finite) if has_interval else None


MODELS = [Persistence, SeasonalNaive, holt_winters, snarimax_seasonal, snarimax_plain, Streamrnn]
REFERENCES = [auto_arima, auto_ets]


def run(series_list, H, references=True, with_dates=True):
    """``{series: {model: (mean MAE, h=1 MAE, seconds, interval stats)}}``, printed as it goes."""
    table = {}
    for s in series_list:
        row = {}
        for make in MODELS + (REFERENCES if references and len(s.values) <= REFERENCE_LONGEST else []):
            if make is SeasonalNaive and not s.season:
                continue
            model = make(s, with_dates) if make is Streamrnn else make(s)
            row[model.name] = score(s, model, H)
        table[s.name] = row
        ours = row["streamrnn Forecaster"]
        print(f"  {s.name:<20} n={len(s.values):>5}  mean MAE over h=1..{H}: "
              + "  ".join(f"{k.split()[-1][:14]} {v[0]:.4g}" for k, v in row.items()), flush=True)
        if ours[3]:
            c, k, w, _ = ours[3]
            print(f"  {'':<20} streamrnn 90% interval coverage {c / max(k, 1):.3f} over {k}", flush=True)
    return table


CLASSIC = ("seasonal naive", "river HoltWinters", "river SNARIMAX(1,1,1)(1,1,1)m", "river SNARIMAX(2,1,1)")


def _ratio(r):
    """A ratio in a 16-wide column (a diverged model's in exponent form)."""
    return f"{r:16.3f}" if r < 1e6 else f"{r:16.3g}"


def summarise(table, H, title):
    """Print the per-series ratios; returns the geometric means and the checks the issue sets."""
    ours = "streamrnn Forecaster"
    print(f"\n{title}: mean MAE over h = 1..{H}, as a ratio to persistence's (the last two columns: "
          f"streamrnn / the best classic model of the series, and / the best reference)")
    names = sorted({m for row in table.values() for m in row}, key=lambda m: (m != "persistence", m))
    print(f"{'series':<20}" + "".join(f"{m.replace('river ', '').replace('statsforecast ', '')[:15]:>16}" for m in names)
          + f"{'vs best classic':>16}{'vs best ref':>12}")
    logs = {m: [] for m in names}
    vs_classic, vs_ref, beats = [], [], 0
    for name, row in table.items():
        p = row["persistence"][0]
        cells = ""
        for m in names:
            if m in row:
                cells += _ratio(row[m][0] / p)
                logs[m].append(math.log(row[m][0] / p))
            else:
                cells += f"{'-':>16}"
        best = min(row[m][0] for m in CLASSIC + ("persistence",) if m in row)
        refs = [row[m][0] for m in row if m.startswith("statsforecast")]
        r = row[ours][0] / best
        vs_classic.append(math.log(r))
        beats += row[ours][0] < p
        cells += f"{r:16.3f}"
        if refs:
            vs_ref.append(math.log(row[ours][0] / min(refs)))
            cells += f"{row[ours][0] / min(refs):12.3f}"
        print(f"{name[:19]:<20}{cells}")
    geo = {m: math.exp(sum(v) / len(v)) for m, v in logs.items() if v}
    print(f"{'geometric mean':<20}" + "".join(_ratio(geo[m]) if m in geo else f"{'-':>16}" for m in names)
          + f"{math.exp(sum(vs_classic) / len(vs_classic)):16.3f}"
          + (f"{math.exp(sum(vs_ref) / len(vs_ref)):12.3f}" if vs_ref else ""))
    secs = {m: sum(row[m][2] for row in table.values() if m in row) for m in names}
    print(f"{'seconds':<20}" + "".join(f"{secs[m]:16.1f}" for m in names))
    print(f"streamrnn beats persistence over h=1..{H} on {beats}/{len(table)} series; geometric mean of "
          f"MAE / best classic baseline {math.exp(sum(vs_classic) / len(vs_classic)):.3f}")
    covered = counted = 0
    print(f"\n{title}: 90% intervals (coverage; mean width / persistence's MAE)")
    print(f"{'series':<20}{'streamrnn cov':>14}{'width':>9}{'unbounded':>10}{'HoltWinters cov':>17}{'width':>9}")
    per_series = []
    hw_cov = hw_cnt = 0
    for name, row in table.items():
        p = row["persistence"][0]
        c, k, w, f = row[ours][3]
        hc, hk, hw, hf = row["river HoltWinters"][3]
        covered, counted = covered + c, counted + k
        hw_cov, hw_cnt = hw_cov + hc, hw_cnt + hk
        per_series.append(c / max(k, 1))
        print(f"{name[:19]:<20}{c / max(k, 1):14.3f}{w / max(f, 1) / p:9.2f}{1 - f / max(k, 1):10.3f}"
              f"{hc / max(hk, 1):17.3f}{hw / max(hf, 1) / p:9.2f}")
    print(f"{'pooled':<20}{covered / max(counted, 1):14.3f}{'':>9}{hw_cov / max(hw_cnt, 1):17.3f}")
    return {"beats": beats, "n": len(table), "vs_classic": math.exp(sum(vs_classic) / len(vs_classic)),
            "coverage": covered / max(counted, 1), "lowest coverage": min(per_series)}
