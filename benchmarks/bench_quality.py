"""Prediction quality on real series: streamrnn against River's online forecasters.

One step ahead, prequentially (predict, then learn), on every series of ``quality_data``: MAE of
each model and its ratio to persistence (tomorrow = today), then the geometric mean of the ratios
over all series. Baselines, all in the same run: persistence, seasonal naive (where a season is
known: 12 for monthly, 24 for hourly, a day for NAB), River SNARIMAX, HoltWinters, and
LinearRegression on 16 standardised lags (target standardised too). Then forecasts of h = 1..12
(and 24 on the long classic series) and 90% intervals, every model in the same run (see
``horizons.py``). ``--set classic``, ``--set held-out`` and ``--set fresh`` run the short classic
series (monthly, quarterly, weekly, yearly, daily) instead; the held-out ones were never looked at
while tuning until stop 31, the fresh ones never (see ``quality_data.FRESH``).

    python benchmarks/bench_quality.py                 # all series (< 15 min here)
    python benchmarks/bench_quality.py --quick         # a subset
    python benchmarks/bench_quality.py --set classic   # the classic series kept for tuning (pip install pmdarima statsmodels statsforecast)
    python benchmarks/bench_quality.py --set held-out  # those kept aside (seen at stop 31)
    python benchmarks/bench_quality.py --set fresh     # kept aside from stop 32 on
    python benchmarks/bench_quality.py --csv my.csv --value-column load --time-column ts
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import math
import statistics
import sys
import time

from river import linear_model, metrics, optim, preprocessing, time_series

import streamrnn
from streamrnn.encoder import calendar as _calendar

sys.path.insert(0, __import__("os").path.dirname(__file__))
from quality_data import Series, all_series, classic_series, read_csv  # noqa: E402
import horizons  # noqa: E402


class Persistence:
    name = "persistence"

    def __init__(self, series):
        self.last = None

    def predict(self, t, x):
        return self.last if self.last is not None else 0.0

    def learn(self, t, x, y):
        self.last = y


class SeasonalNaive:
    name = "seasonal naive"

    def __init__(self, series):
        self.m = series.season
        self.hist = collections.deque(maxlen=self.m)

    def predict(self, t, x):
        if len(self.hist) == self.m:
            return self.hist[0]
        return self.hist[-1] if self.hist else 0.0

    def learn(self, t, x, y):
        self.hist.append(y)


class RiverForecaster:
    """A River forecaster, asked for forecast(1) before each learn_one; persistence while it has
    nothing to say (HoltWinters needs two seasons first)."""

    def __init__(self, name, model):
        self.name = name
        self.model = model
        self.last = None

    def predict(self, t, x):
        try:
            f = self.model.forecast(1, [x] if x else None)[0]
        except (IndexError, ValueError, ZeroDivisionError, TypeError):
            f = None
        if f is None or not math.isfinite(f):
            return self.last if self.last is not None else 0.0
        return f

    def learn(self, t, x, y):
        self.model.learn_one(y, x)
        self.last = y


class LaggedRegressor:
    """A River regressor on the last 16 values (and the exogenous features)."""

    def __init__(self, name, model, lags=16, raw_dates=False):
        self.name = name
        self.model = model
        self.lags = collections.deque(maxlen=lags)
        self.raw_dates = raw_dates

    def _x(self, x):
        feats = {f"lag{k}": v for k, v in enumerate(reversed(self.lags))}
        for k, v in (x or {}).items():
            if isinstance(v, dt.date) and not self.raw_dates:
                # the same cyclic calendar inputs streamrnn derives from a date, as numbers
                feats.update({f"{k}_{part}": value for (_, part), value in _calendar(k, v)})
            else:
                feats[k] = v
        return feats

    def predict(self, t, x):
        if not self.lags:
            return 0.0
        return self.model.predict_one(self._x(x))

    def learn(self, t, x, y):
        if self.lags:
            self.model.learn_one(self._x(x), y)
        self.lags.append(y)


def snarimax(series):
    m = series.season if series.season and series.season <= 48 else 0
    model = time_series.SNARIMAX(p=2, d=1, q=1, m=m or 1, sp=1 if m else 0, sd=0, sq=0)
    return RiverForecaster("river SNARIMAX", model)


def holt_winters(series):
    m = series.season if series.season and series.season <= 48 else 0
    if m:
        model = time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.3, seasonality=m)
    else:
        model = time_series.HoltWinters(alpha=0.5, beta=0.01)
    return RiverForecaster("river HoltWinters", model)


def linear_lags(series):
    model = preprocessing.TargetStandardScaler(
        regressor=preprocessing.StandardScaler() | linear_model.LinearRegression(optimizer=optim.SGD(0.005)))
    return LaggedRegressor("river LinearRegression(lags)", model)


class StreamrnnForecaster(RiverForecaster):
    def __init__(self, name, model):
        super().__init__(name, model)


def streamrnn_models(cell):
    """The forecaster and the lagged regressor with ``cell`` (the defaults otherwise)."""
    suffix = "" if cell == "lstm" else f" {cell}"

    def forecaster(series):
        return StreamrnnForecaster(f"streamrnn Forecaster{suffix}", streamrnn.RecurrentForecaster(cell=cell, seed=0))

    def regressor(series):
        return LaggedRegressor(f"streamrnn Regressor(lags){suffix}", streamrnn.RecurrentRegressor(cell=cell, seed=0),
                               lags=4, raw_dates=True)

    return [forecaster, regressor]


BASELINES = [Persistence, SeasonalNaive, snarimax, holt_winters, linear_lags]


def inputs(series: Series, t: int):
    x = dict(series.features[t]) if series.features else {}
    if series.times is not None:
        x["time"] = series.times[t]
    return x


def score(series: Series, make):
    model = make(series)
    mae = metrics.MAE()
    start = time.perf_counter()
    for t, y in enumerate(series.values):
        x = inputs(series, t)
        if t > 0:  # the first value has nothing to be predicted from
            mae.update(y, model.predict(t, x))
        model.learn(t, x, y)
    return model.name, mae.get(), time.perf_counter() - start


def river_inputs_ok(make):
    return make in (snarimax, holt_winters)


def run(series_list, makers):
    table = {}
    for s in series_list:
        row = {}
        for make in makers:
            if make is SeasonalNaive and not s.season:
                continue
            if river_inputs_ok(make):
                # River's forecasters take no datetime inputs: they see the exogenous numbers only
                feats = s.features
                s2 = Series(s.name, s.values, None, feats, s.season)
                name, mae, secs = score(s2, make)
            else:
                name, mae, secs = score(s, make)
            row[name] = (mae, secs)
        table[s.name] = row
        persist = row["persistence"][0]
        best = min((v[0], k) for k, v in row.items())
        print(f"{s.name:<52} n={len(s.values):>6}  persistence MAE {persist:10.4g}  best: {best[1]} "
              f"({best[0] / persist:.3f})", flush=True)
    return table


def summarise(table):
    models = sorted({m for row in table.values() for m in row})
    print(f"\n{'series':<46}" + "".join(f"{m[:17]:>18}" for m in models))
    for name, row in table.items():
        p = row["persistence"][0]
        cells = "".join(f"{row[m][0] / p:18.3f}" if m in row else f"{'-':>18}" for m in models)
        print(f"{name[:45]:<46}{cells}")
    # four decimals for the default forecaster, where 1.000 could hide either side of persistence
    print(f"{'geometric mean of MAE / persistence':<46}", end="")
    geo = {}
    for m in models:
        ratios = [row[m][0] / row["persistence"][0] for row in table.values() if m in row and row["persistence"][0] > 0]
        geo[m] = math.exp(statistics.fmean(math.log(max(r, 1e-12)) for r in ratios))
        print(f"{geo[m]:18.3f}", end="")
    print()
    secs = {m: sum(row[m][1] for row in table.values() if m in row) for m in models}
    print(f"{'seconds (all series)':<46}" + "".join(f"{secs[m]:18.1f}" for m in models))
    ours = [m for m in models if m.startswith("streamrnn")]
    theirs = [m for m in models if not m.startswith("streamrnn") and m != "persistence"]
    best_river = min(theirs, key=geo.get)
    best_ours = min(ours, key=geo.get)
    losses = [f"{n} ({row[best_ours][0] / row['persistence'][0]:.4f})" for n, row in table.items()
              if row[best_ours][0] >= row["persistence"][0]]
    print(f"\nbest River baseline: {best_river} (geo-mean ratio {geo[best_river]:.3f}); "
          f"best streamrnn: {best_ours} ({geo[best_ours]:.3f})")
    print(f"{best_ours} beats persistence on {len(table) - len(losses)}/{len(table)} series"
          + (f"; not on: {', '.join(losses)}" if losses else ""))
    return geo


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--csv", default=None, help="score one CSV instead of the built-in series")
    ap.add_argument("--value-column", default="value")
    ap.add_argument("--time-column", default="timestamp", help="'' for none")
    ap.add_argument("--features", default="", help="comma-separated exogenous columns")
    ap.add_argument("--cells", default="lstm", help="comma-separated cells of the streamrnn rows (e.g. lstm,mingru)")
    ap.add_argument("--set", choices=("sensors", "classic", "held-out", "fresh"), default="sensors",
                    help="sensors: NAB, ETT, AirlinePassengers (one step, and multi-step on three); classic: the "
                         "short classic series kept for tuning, held-out: those kept aside until stop 31, fresh: those "
                         "kept aside since (one step, h=1..12 "
                         "and 90%% intervals, with statsforecast's AutoARIMA/AutoETS as a reference)")
    ap.add_argument("--no-reference", action="store_true", help="without statsforecast (slow)")
    ap.add_argument("--no-dates", action="store_true", help="classic sets: streamrnn sees no dates")
    ap.add_argument("--no-multistep", action="store_true")
    ap.add_argument("--only-multistep", action="store_true")
    args = ap.parse_args(argv)
    if args.set != "sensors":
        series = classic_series(held_out="fresh" if args.set == "fresh" else args.set == "held-out")
        start = time.perf_counter()
        if not args.only_multistep:
            # (River's models never see the dates; with --no-dates streamrnn does not either)
            one_step = [Series(s.name, s.values, None, s.features, s.season) for s in series] if args.no_dates else series
            summarise(run(one_step, BASELINES + streamrnn_models("lstm")[:1]))
        if not args.no_multistep:
            for H in (12, 24):
                chosen = [s for s in series if H == 12 or len(s.values) >= 1000]
                if chosen:
                    print(f"\nh = 1..{H}")
                    table = horizons.run(chosen, H, references=not args.no_reference, with_dates=not args.no_dates)
                    horizons.summarise(table, H, f"{args.set}, h = 1..{H}")
        print(f"\ntotal {time.perf_counter() - start:.0f} s")
        return
    if args.csv:
        series = [read_csv(args.csv, args.value_column, args.time_column or None,
                           [c for c in args.features.split(",") if c])]
    else:
        series = all_series(args.quick)
    start = time.perf_counter()
    if not args.only_multistep:
        table = run(series, BASELINES + [m for cell in args.cells.split(",") for m in streamrnn_models(cell)])
        summarise(table)
    if not args.no_multistep and not args.csv:
        print("\nh = 1..12")
        table = horizons.run(series, 12, references=False)
        horizons.summarise(table, 12, "sensors, h = 1..12")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
