"""Recurrent forecaster."""

from __future__ import annotations

import numpy as np
from river.time_series.base import Forecaster

from .base import RecurrentEstimator, check_number
from .kernels import engine as E

__all__ = ["RecurrentForecaster"]

# Input column 0 of a forecaster is the previous value of the series.
Y_LAG = "__y_lag__"


class RecurrentForecaster(RecurrentEstimator, Forecaster):
    """Stateful recurrent network forecaster, learning online with truncated BPTT.

    At each step the network reads the previous value of the series (and the exogenous features
    `x`, if any) and predicts the current one. `forecast` rolls the network forward from its current
    state, feeding each prediction back as the next input, without changing the model.

    Parameters
    ----------
    cell
        Recurrent cell: `"lstm"`, `"gru"` or `"rnn"`.
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
    dtype
        `"float64"` or `"float32"`.
    seed
        Seed of the weight initialisation.

    Examples
    --------

    Dates and datetimes in `x` become cyclic calendar inputs (day of week, day of year, hour).

    >>> from river import datasets, evaluate, metrics
    >>> import streamrnn

    >>> model = streamrnn.RecurrentForecaster(hidden_size=16, seed=42)
    >>> evaluate.evaluate(datasets.AirlinePassengers(), model, metrics.MAE(), horizon=3)
    +1 MAE: 35.046794
    +2 MAE: 36.64535
    +3 MAE: 36.95722

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
        embedding_size: int | None = None,
        dtype: str = "float64",
        seed: int | None = None,
    ):
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
        self._features[Y_LAG] = 0
        self._categorical.append(False)
        self._last_y: float | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {"cell": "lstm", "hidden_size": 8, "seed": 1}
        yield {"cell": "gru", "hidden_size": 8, "truncation": 4, "update_every": 2, "seed": 1}
        yield {"cell": "rnn", "hidden_size": 8, "num_layers": 2, "seed": 1}

    def _inputs(self, x: dict | None, y_lag: float | None) -> dict:
        inputs = dict(x) if x else {}
        if Y_LAG in inputs:
            raise ValueError(f"feature name {Y_LAG!r} is reserved for the previous value of the series")
        inputs[Y_LAG] = y_lag
        return inputs

    def learn_one(self, y: float, x: dict | None = None) -> None:
        y = check_number(y, "y")
        self._learn(self._inputs(x, self._last_y), y)
        self._last_y = y

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list:
        if xs is not None and len(xs) != horizon:
            raise ValueError(f"xs has {len(xs)} rows, expected horizon={horizon}")
        if horizon <= 0:
            return []
        if self._cfg is None:
            return [0.0] * horizon
        n = self._cfg.n_inputs
        dt = self._mem.dtype
        X = np.zeros((horizon, n), dtype=dt)
        present = np.zeros((horizon, n), dtype=np.uint8)
        tokens = np.full((horizon, self._cfg.slots), -1.0, dtype=dt)
        for s in range(horizon):
            self._vectorize(self._inputs(xs[s] if xs else None, self._last_y if s == 0 else 0.0), learn=False)
            X[s] = self._xbuf
            present[s] = self._present
            tokens[s] = self._tokbuf
        out = np.empty(horizon, dtype=dt)
        E.rollout(self._mem, self._meta, self._scratch, X, present, tokens, 0, out)
        return [float(v) for v in out]
