"""River's estimator checks, learning with memory, and bad input."""

import copy
import math
import pickle

import numpy as np
import pytest
from river import checks

import streamrnn
from streamrnn.cells import CELLS

ESTIMATORS = [streamrnn.RecurrentRegressor, streamrnn.RecurrentClassifier, streamrnn.RecurrentForecaster]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_check_estimator(estimator, cell):
    model = estimator(cell=cell, hidden_size=8, truncation=6, update_every=2, seed=7)
    for check in checks.yield_checks(model):
        check(model.clone())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_learns_a_delayed_copy(cell):
    """y_t = x_{t-5}: only a model with memory can go below the target variance."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 30_000)
    model = streamrnn.RecurrentRegressor(cell=cell, seed=0)
    sq = []
    for t in range(len(x)):
        y = x[t - 5] if t >= 5 else 0.0
        sq.append((model.predict_one({"x": x[t]}) - y) ** 2)
        model.learn_one({"x": x[t]}, y)
    assert np.mean(sq[-2000:]) < 0.1 * (1 / 3)


def _stream(model, n=50, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = {"a": rng.normal(), "b": rng.normal(), "c": str(rng.choice(["p", "q"]))}
        if isinstance(model, streamrnn.RecurrentForecaster):
            model.learn_one(float(rng.normal()), x)
        elif isinstance(model, streamrnn.RecurrentClassifier):
            model.learn_one(x, bool(rng.integers(2)))
        else:
            model.learn_one(x, float(rng.normal()))


BAD_X = [
    ({"a": float("nan")}, "a"),
    ({"a": 1.0, "b": float("inf")}, "b"),
    ({"a": 1.0, "weird": [1, 2]}, "weird"),
    ({"new_feature": 2.0, "z": -float("inf")}, "z"),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("x,name", BAD_X)
def test_bad_features_raise_and_leave_the_model_unchanged(estimator, x, name):
    model = estimator(hidden_size=4, seed=1)
    _stream(model)
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=name):
        if isinstance(model, streamrnn.RecurrentForecaster):
            model.learn_one(1.0, x)
        elif isinstance(model, streamrnn.RecurrentClassifier):
            model.learn_one(x, True)
        else:
            model.learn_one(x, 1.0)
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("y", [None, float("nan"), float("inf"), "text", [1.0]])
def test_bad_targets_raise_and_leave_the_model_unchanged(y):
    for model in (streamrnn.RecurrentRegressor(hidden_size=4, seed=1), streamrnn.RecurrentForecaster(hidden_size=4, seed=1)):
        _stream(model)
        before = pickle.dumps(model)
        with pytest.raises(ValueError):
            if isinstance(model, streamrnn.RecurrentForecaster):
                model.learn_one(y)
            else:
                model.learn_one({"a": 1.0}, y)
        assert pickle.dumps(model) == before


def test_classifier_none_target_and_new_class_with_bad_x():
    model = streamrnn.RecurrentClassifier(hidden_size=4, seed=1)
    _stream(model)
    before = pickle.dumps(model)
    with pytest.raises(ValueError):
        model.learn_one({"a": 1.0}, None)
    # a new class with a bad feature must not grow the softmax
    with pytest.raises(ValueError, match="a"):
        model.learn_one({"a": float("nan")}, "brand-new")
    assert pickle.dumps(model) == before


def test_predict_one_does_not_change_the_model():
    for estimator in ESTIMATORS:
        model = estimator(hidden_size=4, seed=1)
        _stream(model)
        before = pickle.dumps(model)
        if isinstance(model, streamrnn.RecurrentForecaster):
            model.forecast(5, [{"a": 1.0}] * 5)
        elif isinstance(model, streamrnn.RecurrentClassifier):
            model.predict_proba_one({"a": 1.0, "unseen": 3.0})
        else:
            model.predict_one({"a": 1.0, "unseen": 3.0})
        assert pickle.dumps(model) == before


def test_non_finite_gradient_skips_the_update_and_is_counted():
    from streamrnn import layout
    from streamrnn.kernels import blocks

    model = streamrnn.RecurrentRegressor(hidden_size=4, seed=1)
    _stream(model)
    params = model._mem[: model.n_parameters].copy()
    # poison a stored activation of the window: the gradient becomes NaN
    hs = layout.block(model._mem, model._meta, blocks.HS)
    pos = int(model._meta[blocks.POS])
    hs[0, pos - 3, 0] = np.nan
    skipped = model.n_skipped_updates
    model.learn_one({"a": 1.0}, 1.0)
    assert model.n_skipped_updates == skipped + 1
    assert np.array_equal(model._mem[: model.n_parameters], params)


def test_key_order_and_missing_features():
    a = streamrnn.RecurrentRegressor(hidden_size=4, seed=3)
    b = copy.deepcopy(a)
    rng = np.random.default_rng(0)
    for _ in range(30):
        x = {"u": rng.normal(), "v": rng.normal(), "w": str(rng.choice(["s", "t"]))}
        a.learn_one(x, 1.0)
        b.learn_one(dict(reversed(list(x.items()))), 1.0)
    assert a.predict_one({"u": 1.0, "v": 2.0}) == b.predict_one({"v": 2.0, "u": 1.0})
    # a missing feature reads as its running mean; nothing fails
    assert math.isfinite(a.predict_one({}))


def test_key_order_never_matters_whatever_came_between():
    """Dicts of changing keys, None values and categories, fed as given, with sorted keys and with
    shuffled keys: the buffers' fast path (same keys as the last plain x) must never read what an
    x in between left in them."""
    rng = np.random.default_rng(1)
    stream = []
    for t in range(300):
        x = {"a": float(rng.normal())}
        r = rng.random()
        if r < 0.6:
            x["b"] = float(rng.normal())
        elif r < 0.7:
            x["b"] = None
        if rng.random() < 0.3:
            x["c"] = str(rng.choice(["red", "blue"]))
        stream.append((x, float(rng.normal())))
    models = [streamrnn.RecurrentRegressor(hidden_size=4, seed=3) for _ in range(3)]
    orders = [lambda x: x, lambda x: dict(sorted(x.items())),
              lambda x: dict(sorted(x.items(), key=lambda kv: rng.random()))]
    for x, y in stream:
        predictions = []
        for model, order in zip(models, orders):
            predictions.append(model.predict_one(order(x)))
            model.learn_one(order(x), y)
        assert predictions[0] == predictions[1] == predictions[2]


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_optimizer_averages_never_go_subnormal(optimizer):
    """A feature seen for a while, then absent: its input weights get zero gradients and their
    optimizer averages decay; they are zeroed before they reach subnormal numbers (slow)."""
    model = streamrnn.RecurrentRegressor(hidden_size=4, optimizer=optimizer, lr=0.01, seed=0)
    for t in range(50):
        model.learn_one({"a": math.sin(t / 5), "b": math.cos(t / 3)}, math.sin((t + 1) / 5))
    P = model.n_parameters
    tiny = np.finfo(np.float32).tiny
    for t in range(1500):
        model.learn_one({"a": math.sin(t / 5)}, math.sin((t + 1) / 5))
        averages = np.abs(model._mem[P : 3 * P])
        assert not np.any((averages > 0) & (averages < tiny)), t
    assert np.count_nonzero(averages == 0) > 0  # the absent feature's rows did decay


def test_huge_inputs_never_make_predictions_nan():
    model = streamrnn.RecurrentRegressor(hidden_size=8, seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    for t in range(500):
        v = 1e150 if t % 97 == 0 else rng.normal()
        model.learn_one({"x": v}, v * 2)
        assert math.isfinite(model.predict_one({"x": v}))


def test_values_beyond_the_dtype_range_are_refused_and_leave_the_model_alone():
    model = streamrnn.RecurrentRegressor(hidden_size=8, seed=0)  # float32
    for t in range(50):
        model.learn_one({"x": math.sin(t)}, math.cos(t))
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="'x'.*beyond"):
        model.learn_one({"x": 1e30}, 1.0)
    with pytest.raises(ValueError, match="y.*beyond"):
        model.learn_one({"x": 1.0}, -1e30)
    assert pickle.dumps(model) == before
    assert math.isfinite(model.predict_one({"x": 1e15}))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype(estimator, dtype):
    model = estimator(hidden_size=8, dtype=dtype, seed=0)
    _stream(model, n=40)
    assert model._mem.dtype == np.dtype(dtype)
    pickle.loads(pickle.dumps(model))


def test_forecast_rollout_matches_stepwise_prediction():
    """The first forecast step equals a prediction from the state, and the rollout feeds its own
    predictions back."""
    model = streamrnn.RecurrentForecaster(hidden_size=8, seed=0)
    series = np.sin(np.arange(2000) / 5)
    for y in series:
        model.learn_one(float(y))
    f = model.forecast(20)
    assert len(f) == 20 and all(math.isfinite(v) for v in f)
    # a sine is easy: the next value is close
    assert abs(f[0] - np.sin(2000 / 5)) < 0.2
    # the forecast does not move the model
    assert model.forecast(20) == f
    # one step goes through a faster path than the rollout; both give the same number
    assert model.forecast(1) == [f[0]]
    assert model.shrink_weight > 0.0  # the network's change is used, not persistence alone


def test_forecast_one_step_equals_rollout_with_exogenous_features():
    model = streamrnn.RecurrentForecaster(hidden_size=8, seed=1)
    for t in range(300):
        model.learn_one(math.sin(t / 7) + 0.1 * math.cos(t), {"u": math.cos(t / 3)})
    xs = [{"u": 0.5}, {"u": -0.2}]
    assert model.forecast(1, xs[:1]) == model.forecast(2, xs)[:1]


from hypothesis import given, settings, strategies as st

_FEATURES = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.sampled_from(["x", "y", "z"]), st.none()),
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(stream=st.lists(st.tuples(_FEATURES, st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
                       min_size=1, max_size=40))
def test_any_stream_of_valid_inputs_keeps_predictions_finite_and_predict_pure(stream):
    model = streamrnn.RecurrentRegressor(hidden_size=4, truncation=4, update_every=2, seed=0)
    for x, y in stream:
        before = pickle.dumps(model)
        p = model.predict_one(x)
        assert math.isfinite(p)
        assert pickle.dumps(model) == before
        model.learn_one(x, y)
    assert model.n_skipped_updates == 0


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("cell,update_every,num_layers,n", [
    ("lstm", 1, 1, 113), ("lstm", 3, 1, 112), ("gru", 3, 2, 114), ("rnn", 2, 1, 113), ("lstm", 4, 1, 4),
    ("mingru", 2, 2, 113)])
def test_pickles_keep_the_live_window_only_and_continue_exactly(estimator, cell, update_every, num_layers, n):
    """A pickle leaves out the stale half of the window buffer and the parts of the oldest live row
    that are never read again; the unpickled model then predicts and learns exactly as the original
    does, whatever the phase of the update cycle (n) when it was saved."""
    a = estimator(cell=cell, hidden_size=8, truncation=6, update_every=update_every, num_layers=num_layers, seed=0)
    _stream(a, n=n)  # not a multiple of the buffer length: stale rows exist on both sides
    blob = pickle.dumps(a)
    b = pickle.loads(blob)
    assert len(a.__getstate__()["_mem"]) < a._mem.nbytes
    rng = np.random.default_rng(5)
    for _ in range(60):
        x = {"a": rng.normal(), "b": rng.normal(), "c": str(rng.choice(["p", "q"]))}
        if isinstance(a, streamrnn.RecurrentForecaster):
            assert a.forecast(3, [x] * 3) == b.forecast(3, [x] * 3)
            y = float(rng.normal())
            a.learn_one(y, x)
            b.learn_one(y, x)
        elif isinstance(a, streamrnn.RecurrentClassifier):
            assert a.predict_proba_one(x) == b.predict_proba_one(x)
            y = bool(rng.integers(2))
            a.learn_one(x, y)
            b.learn_one(x, y)
        else:
            assert a.predict_one(x) == b.predict_one(x)
            y = float(rng.normal())
            a.learn_one(x, y)
            b.learn_one(x, y)


def _gappy_stream(n, seed):
    """Every 10 minutes the value barely moves; after an hour's silence (one event in eight) it is
    a fresh draw around 100: persistence is right on regular steps and wrong after a long gap."""
    import datetime as dt

    rng = np.random.default_rng(seed)
    when, y = dt.datetime(2024, 1, 1), 100.0
    for t in range(n):
        long_gap = t % 8 == 7
        when += dt.timedelta(minutes=60 if long_gap else 10)
        y = 100.0 + rng.normal(0.0, 20.0) if long_gap else y + rng.normal(0.0, 0.5)
        yield {"time": when}, y, long_gap


def test_forecaster_judges_the_steps_after_a_long_gap_apart():
    from streamrnn import forecaster as F

    model = streamrnn.RecurrentForecaster(hidden_size=8, seed=0)
    errors = {True: [0.0, 0.0], False: [0.0, 0.0]}  # long gap -> [model, persistence] absolute errors
    last = None
    for t, (x, y, long_gap) in enumerate(_gappy_stream(1600, seed=0)):
        if t >= 800:
            errors[long_gap][0] += abs(y - model.forecast(1, [x])[0])
            errors[long_gap][1] += abs(y - last)
        model.learn_one(y, x)
        last = y
    # after a long gap the best expert is the robust level (about 100), not the last value ...
    assert model._expert(F.AFTER_LONG_GAP) >= len(F.SHRINK_WEIGHTS)
    x_next, _, _ = next(_gappy_stream(8, seed=1))
    x_after_gap = {"time": x_next["time"].replace(year=2030)}
    assert abs(model.forecast(1, [x_after_gap])[0] - 100.0) < 0.5 * abs(model._last_y - 100.0) + 5.0
    # ... on regular steps persistence or the network's change, and both contexts beat persistence
    assert model._expert(F.REGULAR) < len(F.SHRINK_WEIGHTS)
    assert errors[True][0] < 0.9 * errors[True][1]
    assert errors[False][0] < 1.05 * errors[False][1]


@pytest.mark.parametrize("when, seconds", [
    (__import__("datetime").datetime(1970, 1, 2), 86400.0),
    (__import__("datetime").datetime(1970, 1, 1, 1, tzinfo=__import__("datetime").timezone.utc), 3600.0),
    (__import__("datetime").date(1970, 1, 3), 2 * 86400.0),
])
def test_event_time_of_dates_and_datetimes(when, seconds):
    from streamrnn.forecaster import _event_time

    assert _event_time({"u": 1.0, "when": when}) == seconds
    assert _event_time({"u": 1.0}) is None and _event_time(None) is None


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("estimator", ["regressor", "classifier", "forecaster"])
def test_learning_after_a_prediction_reuses_its_forward_and_ends_in_the_same_model(estimator, cell):
    """learn_one takes predict_one's forward for the same input instead of recomputing it: a model
    asked before every step ends bit for bit where one never asked ends."""
    from streamrnn.kernels import blocks

    params = dict(cell=cell, hidden_size=8, num_layers=2, truncation=4, seed=0)
    make = {"regressor": streamrnn.RecurrentRegressor, "classifier": streamrnn.RecurrentClassifier,
            "forecaster": streamrnn.RecurrentForecaster}[estimator]
    asked, silent = make(**params), make(**params)
    rng = np.random.default_rng(0)
    for t in range(300):
        x = {"u": float(rng.normal()), "c": "ab"[t % 2] if t % 3 else "z"}
        y = math.sin(t / 5) if estimator != "classifier" else t % 3 == 0
        if t > 1:
            if estimator == "forecaster":
                asked.forecast(1, [x])
            else:
                asked.predict_one(x)
            assert asked._meta[blocks.PREDICTED_AT] == asked._meta[blocks.N_STEPS] + 1  # the forward is on offer
        for model in (asked, silent):
            if estimator == "forecaster":
                model.learn_one(y, x)
            else:
                model.learn_one(x, y)
        assert asked._meta is None or asked._meta[blocks.PREDICTED_AT] == 0
    assert pickle.dumps(asked) == pickle.dumps(silent)


def test_predict_learn_one_is_predict_one_then_learn_one():
    """The fused prequential step gives the same predictions and ends in the same model, also
    when new features appear (then it takes the two calls) and when the target is bad."""
    fused = streamrnn.RecurrentRegressor(hidden_size=8, update_every=2, seed=0)
    pair = streamrnn.RecurrentRegressor(hidden_size=8, update_every=2, seed=0)
    rng = np.random.default_rng(0)
    for t in range(400):
        x = {"u": float(rng.normal())}
        if t >= 200:
            x["w"] = math.cos(t)  # a new feature halfway
        y = math.sin(t / 4)
        expected = pair.predict_one(x)
        pair.learn_one(x, y)
        assert fused.predict_learn_one(x, y) == expected
    before = pickle.dumps(fused)
    with pytest.raises(ValueError):
        fused.predict_learn_one({"u": 1.0, "w": 0.0}, float("nan"))
    with pytest.raises(ValueError):
        fused.predict_learn_one({"u": float("inf"), "w": 0.0}, 1.0)
    assert pickle.dumps(fused) == before == pickle.dumps(pair)


@pytest.mark.parametrize("x", [[1.0, 2.0], "a=1", 3.0])
def test_forecaster_refuses_an_x_that_is_not_a_dict_and_stays_as_it_was(x):
    model = streamrnn.RecurrentForecaster(hidden_size=4, seed=0)
    for t in range(10):
        model.learn_one(math.sin(t))
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="x must be a dict"):
        model.learn_one(1.0, x)
    with pytest.raises(ValueError, match="x must be a dict"):
        model.forecast(1, [x])
    assert pickle.dumps(model) == before


def test_memory_accounting_walks_a_learned_model():
    """River's memory accounting (``_memory_usage``, used by its checks and evaluations) walks
    everything an estimator references. A compiled numba function among the attributes would lead
    it to weak references that raise once their object is gone: none may be reachable."""
    import gc
    import types
    import weakref

    model = streamrnn.RecurrentRegressor(hidden_size=4, seed=0)
    for i in range(5):
        model.predict_one({"x": float(i)})
        model.learn_one({"x": float(i)}, float(i + 1))
    seen, pending = set(), [model]
    while pending:
        obj = pending.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        assert not isinstance(obj, (weakref.ProxyType, weakref.CallableProxyType)), obj
        pending.extend(gc.get_referents(obj))
    assert model._memory_usage


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_an_unknown_cell_is_refused_naming_the_known_ones(estimator):
    with pytest.raises(ValueError, match="cell must be one of 'lstm', 'gru', 'rnn', 'mingru', got 'indrnn'"):
        model = estimator(cell="indrnn")
        model.learn_one(1.0) if estimator is streamrnn.RecurrentForecaster else model.learn_one({"x": 1.0}, 1.0)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: e.__name__)
def test_every_cell_round_trips_through_the_state_format_and_a_directory_store(estimator, cell, tmp_path):
    """persist.dumps / loads (what the stores and checkpoints write) and a directory store give
    back a model that predicts and learns exactly as the original."""
    from streamrnn import persist
    from streamrnn.state import DirectoryStore, KeyedModels, restore_partition, write_partition

    a = estimator(cell=cell, hidden_size=8, truncation=6, update_every=2, num_layers=2, seed=0)
    _stream(a, n=113)
    store = DirectoryStore(tmp_path)
    write_partition(store, "t", 0, {"k": persist.dumps(a, key="k")}, 112)
    store.flush()
    versions = restore_partition(DirectoryStore(tmp_path), "t", 0)
    assert versions.marker == 112 and not versions.rejected
    copies = [persist.loads(persist.dumps(a)), KeyedModels(a.clone(), versions.models, versions.marker).get("k")]
    rng = np.random.default_rng(5)
    for _ in range(40):
        x = {"a": rng.normal(), "b": rng.normal(), "c": str(rng.choice(["p", "q"]))}
        y = bool(rng.integers(2)) if isinstance(a, streamrnn.RecurrentClassifier) else float(rng.normal())
        for b in copies:
            if isinstance(a, streamrnn.RecurrentForecaster):
                assert a.forecast(3, [x] * 3) == b.forecast(3, [x] * 3)
            elif isinstance(a, streamrnn.RecurrentClassifier):
                assert a.predict_proba_one(x) == b.predict_proba_one(x)
            else:
                assert a.predict_one(x) == b.predict_one(x)
        for m in [a] + copies:
            m.learn_one(y, x) if isinstance(m, streamrnn.RecurrentForecaster) else m.learn_one(x, y)
