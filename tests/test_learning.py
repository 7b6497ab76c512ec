"""What learning does, against references written independently of the kernels: the optimizers and
clipping against numpy, the running statistics against numpy, and claims about what the models
learn (that the doctests only show as numbers)."""

import numpy as np
import pytest
from river import datasets, metrics

import streamrnn
from streamrnn.cells import CELLS
from streamrnn import layout
from streamrnn.kernels import blocks
from streamrnn.kernels import engine as E


def _hyper(model):
    return layout.block(model._mem, model._meta, blocks.HYPER)


def _reference_step(name, params, grad, m1, m2, hyper, step, clip):
    """One step of the optimizer ``name`` as the papers write it, in float64 numpy."""
    norm = np.linalg.norm(grad)
    g = grad * (clip / norm if clip > 0 and norm > clip else 1.0)
    lr, eps = hyper[blocks.LR], hyper[blocks.EPS]
    if name == "sgd":  # heavy-ball momentum
        m1 = hyper[blocks.MOMENTUM] * m1 + g
        return params - lr * m1, m1, m2
    if name == "rmsprop":
        m2 = hyper[blocks.RHO] * m2 + (1 - hyper[blocks.RHO]) * g * g
        return params - lr * g / (np.sqrt(m2) + eps), m1, m2
    b1, b2 = hyper[blocks.BETA1], hyper[blocks.BETA2]
    m1 = b1 * m1 + (1 - b1) * g
    m2 = b2 * m2 + (1 - b2) * g * g
    m1_hat, m2_hat = m1 / (1 - b1 ** step), m2 / (1 - b2 ** step)
    return params - lr * m1_hat / (np.sqrt(m2_hat) + eps), m1, m2


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adam"])
@pytest.mark.parametrize("clip_norm", [0.0, 1e-3, 100.0])
def test_an_update_is_the_optimizer_step_of_numpy(optimizer, clip_norm):
    rng = np.random.default_rng(0)
    model = streamrnn.RecurrentRegressor(hidden_size=6, truncation=4, optimizer=optimizer, clip_norm=clip_norm,
                                         lr=0.01, seed=1, dtype="float64")
    for _ in range(25):  # moments that are not zero
        model.learn_one({"a": rng.normal(), "b": rng.normal()}, float(rng.normal()))
    mem, meta, scratch = model._mem, model._meta, model._scratch
    P, D = int(meta[blocks.N_PARAMS]), int(meta[blocks.N_DENSE])
    before = mem[:D].copy(), mem[P:P + D].copy(), mem[2 * P:2 * P + D].copy()
    E.compute_gradient(mem, meta, scratch)
    grad = scratch[:D].copy()
    assert np.linalg.norm(grad) > 1e-3
    step = int(meta[blocks.OPT_STEP]) + 1
    expected = _reference_step(optimizer, *before[:1], grad, *before[1:], _hyper(model), step, clip_norm)
    assert E.apply_gradient(mem, meta, scratch)
    assert int(meta[blocks.OPT_STEP]) == step
    moved = mem[:D] - before[0]
    assert np.linalg.norm(moved) > 0
    np.testing.assert_allclose(mem[:D], expected[0], rtol=1e-10, atol=1e-13)
    used = {"sgd": (1,), "rmsprop": (2,), "adam": (1, 2)}[optimizer]
    for k in used:
        np.testing.assert_allclose(mem[k * P:k * P + D], expected[k], rtol=1e-10, atol=1e-15)


def test_running_statistics_are_numpy_mean_and_variance():
    rng = np.random.default_rng(3)
    model = streamrnn.RecurrentRegressor(hidden_size=4, seed=0, dtype="float64")
    a, b, y = rng.normal(5, 3, 400), rng.uniform(-100, 100, 400), rng.normal(-2, 0.5, 400)
    for t in range(400):
        x = {"a": a[t]} if t % 3 == 0 else {"a": a[t], "b": b[t]}  # b absent a third of the time
        model.learn_one(x, y[t])
    n_in = int(model._meta[blocks.N_IN])
    mean = layout.block(model._mem, model._meta, blocks.XMEAN)
    var = layout.block(model._mem, model._meta, blocks.XVAR)
    count = layout.block(model._mem, model._meta, blocks.XCOUNT)
    seen_b = b[[t for t in range(400) if t % 3]]
    for name, values in (("a", a), ("b", seen_b)):
        col = model._features[name]
        assert count[col] == len(values)
        assert mean[col] == pytest.approx(values.mean(), rel=1e-10)
        assert var[col] == pytest.approx(values.var(), rel=1e-9)
    ystat = layout.block(model._mem, model._meta, blocks.YSTAT)
    assert ystat[0] == 400 and ystat[1] == pytest.approx(y.mean()) and ystat[2] == pytest.approx(y.var())


def _mae_of(model, stream, learn):
    mae = metrics.MAE()
    for x, y in stream:
        mae.update(y, model.predict_one(x))
        learn(model, x, y)
    return mae.get()


# minGRU's gates read the input only, so its state is an input-gated moving average of past
# inputs that always includes the current one: it cannot hold a value for exactly one step, and
# the test below is for the cells with a recurrent matrix (the next one covers minGRU).
@pytest.mark.parametrize("cell", [name for name, cell in CELLS.items() if cell.recurrent_weights])
@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adam"])
def test_every_cell_and_optimizer_learns_a_lagged_target(cell, optimizer):
    """y is 2 * a of the event before: only memory can predict it. The model must beat the best
    memoryless constant (the running mean's MAE) clearly, whatever the cell and the optimizer: an
    optimizer that steps up the gradient, or a cell whose backward pass is wrong, does not."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=3000)
    stream = [({"a": a[t]}, 2 * a[t - 1]) for t in range(1, 3000)]
    lr = {"sgd": 0.01, "rmsprop": 3e-3, "adam": 3e-3}[optimizer]
    model = streamrnn.RecurrentRegressor(cell=cell, hidden_size=16, truncation=4, optimizer=optimizer, lr=lr, seed=0)
    mae = _mae_of(model, stream, lambda m, x, y: m.learn_one(x, y))
    mean_mae = np.mean(np.abs(np.array([y for _, y in stream]) - 0.0))  # about the running mean's
    assert mae < 0.6 * mean_mae, (mae, mean_mae)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adam"])
def test_every_cell_and_optimizer_learns_a_moving_average(cell, optimizer):
    """y is an exponential moving average of the inputs (y_t = 0.3 a_t + 0.7 y_t-1): a memoryless
    model does no better than 0.3 a_t. The model must beat that clearly, whatever the cell and the
    optimizer."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=3000)
    y = np.zeros_like(a)
    for t in range(1, a.size):
        y[t] = 0.3 * a[t] + 0.7 * y[t - 1]
    stream = [({"a": a[t]}, 4 * y[t]) for t in range(1, 3000)]
    lr = {"sgd": 0.01, "rmsprop": 3e-3, "adam": 3e-3}[optimizer]
    model = streamrnn.RecurrentRegressor(cell=cell, hidden_size=16, truncation=4, optimizer=optimizer, lr=lr, seed=0)
    mae = _mae_of(model, stream, lambda m, x, y: m.learn_one(x, y))
    memoryless_mae = np.mean(np.abs(4 * (y[1:] - 0.3 * a[1:])))
    assert mae < 0.6 * memoryless_mae, (mae, memoryless_mae)


@pytest.mark.parametrize("differencing", [True, False])
@pytest.mark.parametrize("shrinkage", [True, False])
def test_the_forecaster_beats_persistence_on_a_seasonal_series_with_every_switch(differencing, shrinkage):
    """A noisy sine with 12 steps a period: every configuration must beat persistence one step
    ahead (a forecaster that learns a negated target, or whose experts never move, does not)."""
    rng = np.random.default_rng(1)
    t = np.arange(1500)
    series = 10 + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, t.size)
    model = streamrnn.RecurrentForecaster(differencing=differencing, shrinkage=shrinkage, seed=0)
    mae, persistence = metrics.MAE(), metrics.MAE()
    for k, y in enumerate(series):
        if k >= 50:
            mae.update(y, model.forecast(1)[0])
            persistence.update(y, series[k - 1])
        model.learn_one(y)
    assert mae.get() < 0.6 * persistence.get(), (mae.get(), persistence.get())


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_multi_step_forecast_follows_the_season(cell):
    """Forecasts 1 to 6 steps ahead of a clean seasonal series, each step rolled out from the one
    before: far better than persistence at every step (a rollout that does not feed back what it
    forecast goes astray after the first step)."""
    t = np.arange(1200)
    series = 10 + 5 * np.sin(2 * np.pi * t / 12)
    model = streamrnn.RecurrentForecaster(cell=cell, shrinkage=False, seed=0)
    errors, naive = np.zeros(6), np.zeros(6)
    for k, y in enumerate(series):
        if k >= 900 and k + 6 <= len(series):
            forecast = model.forecast(6)
            errors += np.abs(np.array(forecast) - series[k:k + 6])
            naive += np.abs(series[k - 1] - series[k:k + 6])
        model.learn_one(y)
    assert np.all(errors < 0.3 * naive), errors / naive


def test_trump_approval_beats_the_running_mean():
    """The claim behind the regressor's doctest number."""
    from river import stats

    model = streamrnn.RecurrentRegressor(seed=0)
    mean, mae, mae_mean = stats.Mean(), metrics.MAE(), metrics.MAE()
    for x, y in datasets.TrumpApproval():
        mae.update(y, model.predict_one(x))
        mae_mean.update(y, mean.get())
        model.learn_one(x, y)
        mean.update(y)
    assert mae.get() < 0.5 * mae_mean.get(), (mae.get(), mae_mean.get())


@pytest.mark.parametrize("cell", list(CELLS))
def test_a_new_model_starts_with_its_cells_biases(cell):
    """The LSTM's forget gates start open (bias 1: remember by default), every other bias at 0."""
    model = streamrnn.RecurrentRegressor(cell=cell, hidden_size=5, num_layers=2, lr=1e-12, seed=0, dtype="float64")
    model.learn_one({"a": 1.0}, 1.0)  # builds the model; one step of about lr
    H, G = 5, CELLS[cell].gates * 5
    for layer in range(2):
        bx = layout.block(model._mem, model._meta, blocks.BX, layer)
        expected = np.zeros(G)
        if cell == "lstm":
            expected[H:2 * H] = 1.0  # gates (i, f, g, o)
        np.testing.assert_allclose(bx, expected, rtol=0, atol=1e-9)
