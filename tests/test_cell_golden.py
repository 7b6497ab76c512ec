"""The predictions of every cell on a fixed stream (float64) are the ones recorded before the cell
declarations moved into ``streamrnn/cells.py``: a refactoring must not change what a model computes.
A pickle round trip midway (which drops window rows and rebuilds them) is part of the stream. The
forecaster is the network alone (``shrinkage=False``: the forecaster's experts, which issue #16
made compete with classic forecasters, have tests of their own); its recorded forecasts are the ones
the checkout before #16 computed for that configuration, bit for bit.

    python tests/test_cell_golden.py --record    # only when a change of behaviour is intended
"""

import json
import pathlib
import pickle
import sys

import numpy as np
import pytest

import streamrnn

GOLDEN = pathlib.Path(__file__).parent / "data" / "cell_predictions.json"
CELLS = ("rnn", "gru", "lstm")
ESTIMATORS = ("regressor", "classifier", "forecaster")


def predictions(cell, estimator):
    rng = np.random.default_rng(7)
    params = dict(cell=cell, hidden_size=6, num_layers=2, truncation=5, update_every=2, seed=11, dtype="float64")
    if estimator == "forecaster":
        model = streamrnn.RecurrentForecaster(shrinkage=False, **params)
    elif estimator == "classifier":
        model = streamrnn.RecurrentClassifier(embedding_size=3, **params)
    else:
        model = streamrnn.RecurrentRegressor(**params)
    out = []
    for t in range(160):
        x = {"a": float(rng.normal()), "b": float(np.sin(t / 5)), "c": str(rng.choice(["u", "v"]))}
        if estimator == "forecaster":
            y = float(10 + 3 * np.sin(t / 4) + rng.normal(0, 0.2))
            if t >= 3:
                out.append(model.forecast(3))
            model.learn_one(y)
        elif estimator == "classifier":
            y = "up" if x["b"] > 0 else ("flat" if t % 7 == 0 else "down")
            proba = model.predict_proba_one(x)
            out.append([proba.get(k, 0.0) for k in ("up", "down", "flat")])
            model.learn_one(x, y)
        else:
            y = float(2 * x["b"] + 0.5 * x["a"])
            out.append(model.predict_one(x))
            model.learn_one(x, y)
        if t == 80:
            model = pickle.loads(pickle.dumps(model))
    return out


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("cell", CELLS)
def test_predictions_are_the_recorded_ones(cell, estimator):
    recorded = json.loads(GOLDEN.read_text())[f"{cell}/{estimator}"]
    np.testing.assert_allclose(np.array(predictions(cell, estimator), dtype=float), np.array(recorded), rtol=1e-9,
                               atol=1e-12)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({f"{c}/{e}": predictions(c, e) for c in CELLS for e in ESTIMATORS}))
    print(f"wrote {GOLDEN}")
