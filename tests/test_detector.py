"""The anomaly detector: River's checks, calibrated scores, the kinds of anomaly it must catch,
and bad input."""

import copy
import math
import pickle

import numpy as np
import pytest
from river import anomaly, checks
from scipy import stats

import streamrnn
from streamrnn.detector import DECADES, DEFAULT_THRESHOLD
from streamrnn.kernels import tail


def _labelled_stream(n, seed=0):
    """Two numeric features with a daily-like cycle and noise, and spikes on one of them every
    97 events (label 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        a = math.sin(t / 8) + 0.1 * rng.normal()
        spike = t > 40 and t % 97 == 0
        out.append(({"a": a + (6.0 if spike else 0.0), "b": 0.5 * a + 0.1 * rng.normal()}, int(spike)))
    return out


@pytest.mark.parametrize("params", list(streamrnn.RecurrentAnomalyDetector._unit_test_params()))
def test_river_checks_with_a_local_dataset(params):
    # River's dataset checks for anomaly detectors read CreditCard, a download: they run here on
    # a generated stream with labelled spikes instead (ROC AUC included); the others as they are
    model = streamrnn.RecurrentAnomalyDetector(**params)
    ran = []
    for check in checks.yield_checks(model):
        dataset = getattr(check, "keywords", {}).get("dataset")
        if dataset is not None:
            long = check.__name__ == "check_bounded_memory_growth"
            check.func(model.clone(), dataset=_labelled_stream(3000 if long else 400))
        else:
            check(model.clone())
        ran.append(check.__name__)
    assert "check_roc_auc" in ran and "check_pickling" in ran and "check_shuffle_features_no_impact" in ran


def _scores(detector, values, context=None):
    out = []
    for t, v in enumerate(values):
        x = {"v": float(v)} if context is None else {"v": float(v), **context(t)}
        out.append(detector.score_one(x))
        detector.learn_one(x)
    return np.array(out)


def test_scores_of_a_stationary_stream_are_calibrated():
    # an AR(1) stream the forecaster learns: once the error window is full, the tail
    # probabilities 10 ** (-16 score) are uniform, and the default threshold alerts on about 1
    # event in 10,000
    rng = np.random.default_rng(1)
    v = np.zeros(7000)
    for t in range(1, len(v)):
        v[t] = 0.8 * v[t - 1] + rng.normal()
    scores = _scores(streamrnn.RecurrentAnomalyDetector(seed=0), v)[3000:]
    p = 10.0 ** (-DECADES * scores)
    assert stats.kstest(p, "uniform").statistic < 0.05
    assert np.mean(scores >= DEFAULT_THRESHOLD) < 0.002
    assert scores.min() >= 0.0 and scores.max() <= 1.0


def _seasonal(n, rng):
    t = np.arange(n)
    return 10 + 3 * np.sin(2 * np.pi * t / 48) + 0.3 * rng.normal(size=n)


@pytest.mark.parametrize("kind", ["spike", "level shift", "variance burst", "pattern break", "stuck sensor"])
def test_each_kind_of_anomaly_scores_above_the_normal_events(kind):
    rng = np.random.default_rng(2)
    v = _seasonal(4000, rng)
    at, length = 3000, 60
    if kind == "spike":
        v[at] += 3.0
        length = 1
    elif kind == "level shift":
        v[at:] += 2.0
    elif kind == "variance burst":
        v[at:at + length] += 1.5 * rng.normal(size=length)
    elif kind == "pattern break":  # the cycle turns upside down
        v[at:] = 20 - v[at:]
    else:  # the sensor reports its last value again and again
        v[at:at + length] = v[at - 1]
    scores = _scores(streamrnn.RecurrentAnomalyDetector(seed=0), v)
    normal = scores[500:at]
    assert scores[at:at + length].max() > np.quantile(normal, 0.99)
    assert np.mean(normal >= DEFAULT_THRESHOLD) < 0.01


def test_a_burst_is_not_learned_as_normal_but_a_lasting_change_is():
    # ten spikes, fifty events apart: every one alerts; the noise growing tenfold for good alerts
    # at first and is normal within a few hundred events
    rng = np.random.default_rng(3)
    v = _seasonal(3500, rng)
    for k in range(10):
        v[2500 + 50 * k] += 4.0 * (1 if k % 2 else -1)
    scores = _scores(streamrnn.RecurrentAnomalyDetector(seed=0), v)
    assert (scores[2500:3000:50] >= DEFAULT_THRESHOLD).all(), scores[2500:3000:50]
    v = _seasonal(6000, np.random.default_rng(3))
    v[3000:] = 10 + 10 * (v[3000:] - 10)
    scores = _scores(streamrnn.RecurrentAnomalyDetector(seed=0), v)
    alerts = [np.mean(scores[a:a + 50] >= DEFAULT_THRESHOLD) for a in (3000, 3500)]
    assert alerts[0] > 0.3 and alerts[1] < 0.02, alerts


def test_dates_and_strings_are_the_forecasters_inputs():
    import datetime as dt

    rng = np.random.default_rng(4)
    start = dt.datetime(2024, 1, 1)
    v = _seasonal(600, rng)
    det = streamrnn.RecurrentAnomalyDetector(seed=0, warmup=50)
    _scores(det, v, lambda t: {"when": start + dt.timedelta(hours=t), "site": "ab"[t % 2]})
    assert list(det._features) == ["v"]


def _state(det):
    return pickle.dumps(det)


def test_scoring_leaves_the_model_unchanged():
    rng = np.random.default_rng(5)
    det = streamrnn.RecurrentAnomalyDetector(seed=0, warmup=20)
    _scores(det, _seasonal(300, rng))
    before = _state(det)
    for v in (10.0, 1e6, -3.0):
        det.score_one({"v": v, "new_feature": 1.0})
    assert _state(det) == before


@pytest.mark.parametrize("x", [None, [1.0], {"v": float("nan")}, {"v": math.inf}, {"v": True}, {"v": None},
                               {1: 2.0}, {"v": 1e300}, {"v": 1.0, "__y_lag__": 2.0}, {"v": object()}])
def test_bad_input_is_refused_and_leaves_the_model_as_it_was(x):
    rng = np.random.default_rng(6)
    det = streamrnn.RecurrentAnomalyDetector(seed=0, warmup=20)
    _scores(det, _seasonal(200, rng))
    before = _state(det)
    for call in (det.score_one, det.learn_one):
        with pytest.raises(ValueError):
            call(copy.deepcopy(x))
        assert _state(det) == before


def test_river_filters_take_the_detector():
    rng = np.random.default_rng(7)
    v = _seasonal(1200, rng)
    v[1000] += 4.0
    for name, make in (("threshold", lambda d: anomaly.ThresholdFilter(d, threshold=DEFAULT_THRESHOLD)),
                       # protecting the detector from what a cold quantile calls anomalous would
                       # keep it from learning the first events (their scores' quantile is near 0)
                       ("quantile", lambda d: anomaly.QuantileFilter(d, q=0.999, protect_anomaly_detector=False))):
        model = make(streamrnn.RecurrentAnomalyDetector(seed=0))
        hits = []
        for t, value in enumerate(v):
            x = {"v": float(value)}
            if model.classify(model.score_one(x)):
                hits.append(t)
            model.learn_one(x)
        assert 1000 in hits, (name, hits)


@pytest.mark.parametrize("params,reason", [({"window": 5}, "window"), ({"tail_quantile": 1.0}, "tail_quantile"),
                                           ({"warmup": 0}, "warmup"), ({"range_tolerance": -1}, "range_tolerance"),
                                           ({"cell": "nope"}, "cell")])
def test_bad_parameters_are_refused(params, reason):
    with pytest.raises(ValueError, match=reason):
        streamrnn.RecurrentAnomalyDetector(**params)


def test_the_tail_kernel_against_numpy():
    rng = np.random.default_rng(8)
    ring, ordered, counts = np.zeros(64), np.zeros(64), np.zeros(2, dtype=np.int64)
    values = rng.exponential(size=500)
    for i, v in enumerate(values):
        tail.push(ring, ordered, counts, v)
        kept = values[max(0, i - 63):i + 1]
        n = int(counts[0])
        assert n == len(kept) and np.array_equal(ordered[:n], np.sort(kept))
    n = int(counts[0])
    kept = np.sort(values[-64:])
    for probe in (0.0, kept[10], kept[40], kept[-1] * 0.999):
        share = (np.count_nonzero(kept >= probe) + 1) / (n + 1)
        if probe <= kept[int(0.98 * (n - 1))]:
            assert tail.log10_tail(ordered, n, 0.98, probe) == pytest.approx(math.log10(share))
    u = kept[int(0.98 * (n - 1))]
    excess = kept[kept > u] - u
    beyond = u + 3.0
    expected = math.log10((len(excess) + 1) / (n + 1)) - 3.0 / excess.mean() / math.log(10)
    assert tail.log10_tail(ordered, n, 0.98, beyond) == pytest.approx(expected)


def test_on_water_flow_every_alert_is_in_a_low_flow_segment_and_each_segment_alerts():
    # what the docstring's example stands for: River's WaterFlow has three low-flow segments
    # (and a pumping peak); at the default threshold the detector alerts in each of the three
    # and nowhere else
    import datetime as dt

    from river import datasets

    segments = {dt.date(2022, 3, 24): 0, dt.date(2022, 3, 25): 0, dt.date(2022, 3, 29): 1,
                dt.date(2022, 4, 27): 2, dt.date(2022, 4, 28): 2}
    detector = streamrnn.RecurrentAnomalyDetector(seed=42)
    alerted = set()
    for x, flow in datasets.WaterFlow():
        event = {"flow": flow, **x}
        if detector.score_one(event) >= DEFAULT_THRESHOLD:
            day = x["Time"].date()
            assert day in segments, (x["Time"], flow)
            alerted.add(segments[day])
        detector.learn_one(event)
    assert alerted == {0, 1, 2}


def test_the_state_format_round_trips_and_refuses_forged_states(tmp_path):
    # persist.dumps/loads (what the runner's checkpoints and stores write; never a pickle): the
    # restored detector scores the rest of the stream exactly as the original
    from streamrnn import persist
    from streamrnn.state import DirectoryStore, KeyedModels, restore_partition, write_partition

    rng = np.random.default_rng(9)
    det = streamrnn.RecurrentAnomalyDetector(seed=0, window=100, warmup=20)
    _scores(det, _seasonal(400, rng), lambda t: {"site": "ab"[t % 2]})
    _scores(det, _seasonal(50, rng) * 2, lambda t: {"site": "a"})  # a second feature, v2, is below
    for t in range(60):
        det.learn_one({"v": 10.0 + math.sin(t), "v2": float(t % 7)})
    blob = persist.dumps(det)
    rest = [{"v": 10.0 + math.sin(t / 3), "v2": float(t % 5)} for t in range(80)]

    def run(d):
        out = []
        for x in rest:
            out.append(d.score_one(x))
            d.learn_one(x)
        return out

    restored = persist.loads(blob)
    assert run(restored) == run(copy.deepcopy(det))
    store = DirectoryStore(tmp_path)
    write_partition(store, "t", 0, {"k": persist.dumps(det, key="k")}, 5)
    models = KeyedModels(det.clone(), restore_partition(DirectoryStore(tmp_path), "t", 0).models, 5)
    assert run(models.get("k")) == run(persist.loads(blob))

    header, arrays = persist.unpack_document(blob)

    def forged(change):
        h, a = copy.deepcopy(header), {k: v.copy() for k, v in arrays.items()}
        change(h["state"]["features"], a)
        return persist.pack_document(h, list(a.items()))

    cases = {
        "counters": lambda f, a: f[0].update(filled=10**6),
        "scale": lambda f, a: f[0].update(scale=-1.0),
        "range": lambda f, a: f[0].update(low=5.0, high=1.0),
        "name": lambda f, a: f[1].update(name=f[0]["name"]),
        "window": lambda f, a: a["0:ring"].__setitem__(3, np.nan),
        "runs": lambda f, a: a["0:runs"].__setitem__(0, -1.0),
        "run": lambda f, a: f[0].update(run=f[0]["seen"] + 1),
        "last": lambda f, a: f[0].update(last=f[0]["high"] + 1.0),
        "fields": lambda f, a: f[0].pop("seen"),
        "arrays": lambda f, a: a.__setitem__("7:ring", np.zeros(100)),
        "parameters": lambda f, a: f[0]["forecaster"].update(params=persist.encode(
            [getattr(streamrnn.RecurrentForecaster(hidden_size=4), p) for p in persist._param_names(
                streamrnn.RecurrentForecaster)])),
    }
    for what, change in cases.items():
        with pytest.raises(persist.StateError):
            persist.loads(forged(change))
