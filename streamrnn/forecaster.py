"""Recurrent forecaster."""

from __future__ import annotations

import numpy as np
from river.time_series.base import Forecaster

from .base import RecurrentEstimator
from .kernels import engine as E
from .kernels import shrink

__all__ = ["RecurrentForecaster"]

# Shrinkage weights of the predicted change: the forecaster uses the one with the lowest recent
# absolute error (0 is persistence), so a change the network cannot predict is not added as noise.
SHRINK_WEIGHTS = np.array([0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])
SHRINK_DECAY = 0.99
# Persistence until the network has this many changes behind it: early choices are noise.
SHRINK_WARMUP = 32

# Input columns 0 and 1 of a forecaster: the previous value of the series and its last change.
Y_LAG = "__y_lag__"
D_LAG = "__y_change__"


class RecurrentForecaster(RecurrentEstimator, Forecaster):
    """Stateful recurrent network forecaster, learning online with truncated BPTT.

    At each step the network reads the previous value of the series, its last change, and the
    exogenous features `x` if any (dates become calendar inputs), and predicts the change to the
    next value (with `differencing`, the default: the network learns a residual on top of
    persistence, which is what makes it robust on trending and random-walk-like series), or the
    next value itself. `forecast` rolls the network forward from its current state, feeding each
    forecast back as the next input, without changing the model.

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
        `"float32"` (the default: twice the vector lanes and half the memory traffic, about 1.3x to
        2x faster) or `"float64"`.
    seed
        Seed of the weight initialisation.

    Examples
    --------

    Dates and datetimes in `x` become cyclic calendar inputs (day of week, day of year, hour).

    >>> from river import datasets, evaluate, metrics
    >>> import streamrnn

    >>> model = streamrnn.RecurrentForecaster(hidden_size=16, seed=42)
    >>> evaluate.evaluate(datasets.AirlinePassengers(), model, metrics.MAE(), horizon=3)
    +1 MAE: 37.778...
    +2 MAE: 42.49...
    +3 MAE: 46.60...

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
        differencing: bool = True,
        shrinkage: bool = True,
        embedding_size: int | None = None,
        dtype: str = "float32",
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
        self.differencing = differencing
        self.shrinkage = shrinkage
        self._shrink_err = np.zeros(len(SHRINK_WEIGHTS))
        self._shrink_seen = 0
        self._shrink_best = 0  # index of the weight with the lowest decayed error
        self._features[Y_LAG] = 0
        self._features[D_LAG] = 1
        self._categorical += [False, False]
        self._last_y: float | None = None
        self._last_change: float | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {"cell": "lstm", "hidden_size": 8, "seed": 1}
        yield {"cell": "gru", "hidden_size": 8, "truncation": 4, "update_every": 2, "seed": 1}
        yield {"cell": "rnn", "hidden_size": 8, "num_layers": 2, "seed": 1}

    def _inputs(self, x: dict | None, y_lag, change) -> dict:
        inputs = dict(x) if x else {}
        if Y_LAG in inputs or D_LAG in inputs:
            raise ValueError(f"feature names {Y_LAG!r} and {D_LAG!r} are reserved")
        inputs[Y_LAG] = y_lag
        inputs[D_LAG] = change
        return inputs

    def _encode(self, x, y_lag, change, learn):
        """Fill the input buffers; the common case (no exogenous features) skips the dict."""
        cfg = self._cfg
        if not x and cfg is not None and cfg.n_inputs == 2 and cfg.slots == 0:
            buf, present = self._xbuf, self._present
            self._memo = None
            buf[0] = 0.0 if y_lag is None else y_lag
            present[0] = y_lag is not None
            buf[1] = 0.0 if change is None else change
            present[1] = change is not None
            return
        self._vectorize(self._inputs(x, y_lag, change), learn)

    def _learn_encoded(self, x, y_lag, change, target):
        self._encode(x, y_lag, change, learn=True)
        return self._learn_step(target)

    def learn_one(self, y: float, x: dict | None = None) -> None:
        y = self._check_target(y)
        if self.differencing:
            if self._last_y is not None:
                change = y - self._last_y
                self._learn_encoded(x, self._last_y, self._last_change, change)
                self._shrink_best = shrink.update(self._mem, self._meta, self._scratch, self._shrink_err,
                                                  SHRINK_WEIGHTS, SHRINK_DECAY, change)
                self._shrink_seen += 1
                self._last_change = change
        else:
            self._learn_encoded(x, self._last_y, self._last_change, y)
            if self._last_y is not None:
                self._last_change = y - self._last_y
        self._last_y = y

    @property
    def shrink_weight(self) -> float:
        """The weight currently applied to the predicted change (1 without shrinkage)."""
        if not (self.differencing and self.shrinkage):
            return 1.0
        if self._shrink_seen < SHRINK_WARMUP:
            return 0.0
        return float(SHRINK_WEIGHTS[self._shrink_best])

    def forecast(self, horizon: int, xs: list[dict] | None = None) -> list:
        if xs is not None and len(xs) != horizon:
            raise ValueError(f"xs has {len(xs)} rows, expected horizon={horizon}")
        if horizon <= 0:
            return []
        if self._cfg is None:
            # nothing learned yet: persistence, or 0 before the first value
            return [self._last_y if self._last_y is not None else 0.0] * horizon
        dt = self._mem.dtype
        if horizon == 1:  # nothing to feed back: one prediction from the current state
            self._encode(xs[0] if xs else None, self._last_y, self._last_change, learn=False)
            E.predict_event(self._mem, self._meta, self._scratch)
            out = float(self._outbuf[0])
            if not self.differencing:
                return [out]
            level = self._last_y if self._last_y is not None else 0.0
            return [level + self.shrink_weight * out]
        n = self._cfg.n_inputs
        X = np.zeros((horizon, n), dtype=dt)
        present = np.zeros((horizon, n), dtype=dt)
        tokens = np.full((horizon, self._cfg.slots), -1.0, dtype=dt)
        for s in range(horizon):
            first = s == 0
            self._encode(xs[s] if xs else None, self._last_y if first else 0.0,
                         self._last_change if first else 0.0, learn=False)
            X[s] = self._xbuf
            present[s] = self._present
            tokens[s] = self._tokbuf
        out = np.empty(horizon)  # float64, like the one-step path: the level is not rounded
        level = self._last_y if self._last_y is not None else 0.0
        E.rollout(self._mem, self._meta, self._scratch, X, present, tokens, 0, 1 if self.differencing else -1,
                  float(level), self.shrink_weight, out)
        return [float(v) for v in out]
