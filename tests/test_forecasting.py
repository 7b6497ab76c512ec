"""The forecaster's seasonality, classic experts, multi-step forecasts and prediction intervals."""

import datetime as dt
import math
import pickle

import numpy as np
import pytest

import streamrnn
from streamrnn import persist, seasonality
from streamrnn.kernels import classic


def _seasonal(m, n, seed=0, noise=0.3, walk=0.05, trend=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / m) + 0.5 * np.cos(4 * np.pi * t / m) + noise * rng.standard_normal(n)
            + np.cumsum(walk * rng.standard_normal(n)) + trend * t)


@pytest.mark.parametrize("m", [7, 12, 24, 52])
def test_the_autocorrelation_finds_the_period(m):
    for seed in range(3):
        assert seasonality.autocorrelation_periods(_seasonal(m, 768, seed=seed)) == [m]


def test_a_series_without_season_gets_none():
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(20):
        walk = np.cumsum(rng.standard_normal(768))
        noise = rng.standard_normal(768)
        ar = np.zeros(768)
        for i in range(1, 768):
            ar[i] = 0.9 * ar[i - 1] + rng.standard_normal()
        for series in (walk, noise, ar):
            found += sum(bool(seasonality.autocorrelation_periods(series[:n])) for n in seasonality.CHECKPOINTS)
    assert found <= 3  # of 300 judgements: a period out of pure noise is rare


def test_the_calendar_gives_the_periods():
    day = 86400.0
    assert seasonality.calendar_periods(31 * day) == [12]
    assert seasonality.calendar_periods(28 * day) == [12]
    assert seasonality.calendar_periods(91 * day) == [4]
    assert seasonality.calendar_periods(7 * day) == [52]
    assert seasonality.calendar_periods(day) == [7]
    assert seasonality.calendar_periods(3600.0) == [24, 168]
    assert seasonality.calendar_periods(300.0) == [288]
    assert seasonality.calendar_periods(365 * day) is None  # yearly: the data's to say
    assert seasonality.calendar_periods(1234.5) is None
    assert seasonality.calendar_periods(None) is None


def _dates(n, start=dt.datetime(2000, 1, 1), months=1):
    return [start.replace(year=start.year + (start.month - 1 + i * months) // 12,
                          month=(start.month - 1 + i * months) % 12 + 1) for i in range(n)]


def test_the_forecaster_finds_the_period_with_and_without_dates():
    values = 10 + _seasonal(12, 200)
    undated = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    dated = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    for y, when in zip(values, _dates(200)):
        undated.learn_one(float(y))
        dated.learn_one(float(y), {"month": when})
    assert undated.periods == [12] and dated.periods == [12]
    # yearly dates say nothing of a cycle of years: it comes from the values, and a walk gets none
    years = [dt.datetime(1800 + i, 1, 1) for i in range(200)]
    cycle = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    walk = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    steps = np.cumsum(np.random.default_rng(1).standard_normal(200))
    for y, w, when in zip(10 + _seasonal(10, 200), steps, years):
        cycle.learn_one(float(y), {"year": when})
        walk.learn_one(float(w), {"year": when})
    assert cycle.periods == [10] and walk.periods == []
    fixed = streamrnn.RecurrentForecaster(hidden_size=4, seasonality=[5, 7], seed=0)
    noseason = streamrnn.RecurrentForecaster(hidden_size=4, seasonality=0, seed=0)
    for y in values:
        fixed.learn_one(float(y))
        noseason.learn_one(float(y))
    assert fixed.periods == [5, 7] and noseason.periods == []


@pytest.mark.parametrize("bad", [1, -3, 2.5, [12, 24, 168], "12", True, [0]])
def test_a_bad_seasonality_is_refused(bad):
    with pytest.raises(ValueError, match="seasonality"):
        streamrnn.RecurrentForecaster(seasonality=bad)


def _multistep(model, values, H, times=None):
    """Mean absolute error per horizon of the forecasts made after each value."""
    errors, counts = np.zeros(H), np.zeros(H)
    for t, y in enumerate(values):
        model.learn_one(float(y), {"month": times[t]} if times else None)
        if t + H < len(values) and t >= 24:
            xs = [{"month": times[t + h]} for h in range(1, H + 1)] if times else None
            f = model.forecast(H, xs)
            errors += np.abs(values[t + 1:t + H + 1] - f)
            counts += 1
    return errors / counts


def test_multi_step_forecasts_of_a_seasonal_series_follow_the_season():
    values = 50 + _seasonal(12, 300, trend=0.02) * 5
    H = 12
    ours = _multistep(streamrnn.RecurrentForecaster(hidden_size=8, seed=0), values, H)
    persistence = np.array([np.mean(np.abs(values[24 + h:len(values) - H + h] - values[24:len(values) - H]))
                            for h in range(1, H + 1)])
    assert ours.mean() < 0.5 * persistence.mean()
    assert (ours < persistence).all()  # every horizon, including the ones a one-step model would miss


def test_the_log_experts_forecast_multiplicative_growth_and_stop_below_zero():
    t = np.arange(240)
    values = 100 * np.exp(0.01 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    model = streamrnn.RecurrentForecaster(hidden_size=4, seasonality=12, seed=0)
    for y in values[:228]:
        model.learn_one(float(y))
    forecast = np.array(model.forecast(12))
    # the logs of this series are a line plus a season: their experts invert to it exactly
    assert np.max(np.abs(forecast / values[228:] - 1)) < 0.02
    assert model._bank[classic.POSITIVE] == 1.0
    model.learn_one(-5.0)
    assert model._bank[classic.POSITIVE] == 0.0
    assert all(math.isfinite(v) for v in model.forecast(24))
    assert all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in model.forecast_interval(12))


def test_a_drifting_series_is_forecast_with_its_drift():
    rng = np.random.default_rng(3)
    values = 100 + np.cumsum(0.5 + rng.standard_normal(400))
    H = 12
    ours = _multistep(streamrnn.RecurrentForecaster(hidden_size=4, seasonality=0, seed=0), values, H)
    persistence = np.array([np.mean(np.abs(values[24 + h:len(values) - H + h] - values[24:len(values) - H]))
                            for h in range(1, H + 1)])
    # persistence misses 0.5 a step: 6 at h = 12, beside the walk's own spread of about 2.8 there
    assert ours[-1] < 0.6 * persistence[-1]
    assert (ours[1:] < persistence[1:]).all()


def test_intervals_cover_as_promised():
    rng = np.random.default_rng(1)
    n = 1500
    level = np.cumsum(0.2 * rng.standard_normal(n))
    values = 20 + level + 3 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.standard_normal(n)
    model = streamrnn.RecurrentForecaster(hidden_size=8, seasonality=24, horizon=6, seed=0)
    covered = counted = beyond = beyond_counted = 0
    for t, y in enumerate(values):
        model.learn_one(float(y))
        if 100 < t < n - 12:
            for h, (lo, hi) in enumerate(model.forecast_interval(12, coverage=0.9), start=1):
                inside = lo <= values[t + h] <= hi
                if h <= 6:
                    covered += inside
                    counted += 1
                else:  # beyond the horizons the experts are scored at: widened, not narrower
                    beyond += inside
                    beyond_counted += 1
    assert 0.86 <= covered / counted <= 0.94
    assert beyond / beyond_counted >= 0.86
    fresh = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    assert fresh.forecast_interval(2) == [(-math.inf, math.inf)] * 2
    with pytest.raises(ValueError, match="coverage"):
        model.forecast_interval(3, coverage=1.5)
    # the highest coverage the last 48 errors can vouch for is bounded; one above it is refused
    # rather than unbounded for ever
    assert all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in model.forecast_interval(3, coverage=48 / 49))
    with pytest.raises(ValueError, match="at most 0.9796"):
        model.forecast_interval(3, coverage=0.99)
    # both from one pass, as the runner takes them
    assert model.forecast_with_interval(12, 0.9) == (model.forecast(12), model.forecast_interval(12, 0.9))
    assert fresh.forecast_with_interval(2) == ([0.0, 0.0], [(-math.inf, math.inf)] * 2)


def test_the_seasonal_input_names_are_reserved_and_refusing_them_changes_nothing():
    model = streamrnn.RecurrentForecaster(hidden_size=4, seasonality=12, seed=0)
    for y in 10 + _seasonal(12, 60):
        model.learn_one(float(y))
    before = persist.dumps(model)
    for name in ("__season_ahead__", "__season_change__"):
        with pytest.raises(ValueError, match="reserved"):
            model.learn_one(1.0, {name: 1.0})
        with pytest.raises(ValueError, match="reserved"):
            model.forecast(2, [{name: 1.0}, {name: 1.0}])
    assert persist.dumps(model) == before


def test_forecasting_leaves_the_model_unchanged():
    values = 10 + _seasonal(7, 120)
    model = streamrnn.RecurrentForecaster(hidden_size=8, seed=0)
    twin = streamrnn.RecurrentForecaster(hidden_size=8, seed=0)
    times = [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(140)]
    for t, y in enumerate(values):
        x = {"day": times[t]}
        model.forecast(5, [{"day": times[t + h]} for h in range(5)])
        model.forecast_interval(30, 0.8)
        model.forecast_with_interval(4, 0.9)
        model.learn_one(float(y), x)
        twin.learn_one(float(y), x)
    assert model.forecast(3) == twin.forecast(3)
    assert pickle.dumps(model.__getstate__()["_bank"]) == pickle.dumps(twin.__getstate__()["_bank"])
    assert persist.dumps(model) == persist.dumps(twin)


def test_a_forecast_is_for_the_dates_it_is_asked_for():
    """xs that skip a month ask for two steps ahead, not one."""
    values = 100 + 10 * _seasonal(12, 120)
    times = _dates(124)
    model = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    for y, when in zip(values, times):
        model.learn_one(float(y), {"month": when})
    consecutive = model.forecast(3, [{"month": times[120 + h]} for h in range(3)])
    skipping = model.forecast(2, [{"month": times[121]}, {"month": times[123]}])
    assert skipping == [consecutive[1], model.forecast(4)[3]]


def test_the_state_of_the_experts_is_checked_on_restore():
    model = streamrnn.RecurrentForecaster(hidden_size=4, seasonality=[3, 5], horizon=4, seed=0)
    for y in _seasonal(5, 60):
        model.learn_one(float(y))
    restored = persist.loads(persist.dumps(model))
    assert restored.forecast_interval(6) == model.forecast_interval(6) and restored.periods == [3, 5]
    header, arrays = persist.model_parts(model)
    arrays = dict(arrays)
    for name, tamper in [("_bank", lambda b: b[:-1]), ("_bank", lambda b: np.where(np.arange(b.size) == 3, 4.0, b)),
                         ("_bank", lambda b: np.where(np.arange(b.size) == b.size - 1, -1.0, b)),
                         ("_bank", lambda b: np.where(np.arange(b.size) == 20, np.nan, b))]:
        bad = {**arrays, name: tamper(arrays[name].copy())}
        with pytest.raises(persist.StateError):
            persist.model_from(header, bad)
    found = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    for y in _seasonal(5, 60):
        found.learn_one(float(y))
    header, arrays = persist.model_parts(found)
    arrays = dict(arrays)
    assert persist.model_from(header, arrays).forecast(3) == found.forecast(3)
    with pytest.raises(persist.StateError):
        persist.model_from(header, {**arrays, "_values": arrays["_values"][:-1]})
