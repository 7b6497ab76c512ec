"""Recurrent classifier."""

from __future__ import annotations

import numpy as np
from river import base as river_base

from .base import RecurrentEstimator

__all__ = ["RecurrentClassifier"]


class RecurrentClassifier(RecurrentEstimator, river_base.Classifier):
    """Stateful recurrent network classifier, learning online with truncated BPTT.

    The softmax covers every class seen so far and grows when a new class appears. Each call to
    `learn_one` is one step of the sequence (see `RecurrentRegressor` for the recurrence, the
    truncation and the input handling); `predict_proba_one` runs one step from the current state
    without changing it.

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
    embedding_size
        With a size, categorical (string) features go through a learned embedding of that size
        (the sum over features of one row per `name=value`, updated sparsely), so the cost of an
        event does not grow with the number of categories; with `None`, each category is a
        one-hot input.
    normalize
        Standardise the inputs online.
    dtype
        `"float64"` or `"float32"`.
    seed
        Seed of the weight initialisation.

    Examples
    --------

    >>> from river import datasets, evaluate, metrics
    >>> import streamrnn

    >>> model = streamrnn.RecurrentClassifier(hidden_size=16, seed=42)
    >>> evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
    Accuracy: 87.43%

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
            normalize=normalize,
            embedding_size=embedding_size,
            dtype=dtype,
            seed=seed,
        )
        self._n_outputs = 0
        self._classes: list = []
        self._class_index: dict = {}

    @classmethod
    def _unit_test_params(cls):
        yield {"cell": "lstm", "hidden_size": 8, "seed": 1}
        yield {"cell": "gru", "hidden_size": 8, "truncation": 4, "update_every": 2, "seed": 1}
        yield {"cell": "rnn", "hidden_size": 8, "num_layers": 2, "optimizer": "rmsprop", "seed": 1}

    @property
    def _multiclass(self):
        return True

    def _head(self):
        return "softmax"

    def _target_index(self, y) -> int:
        if y is None:
            raise ValueError("y is None")
        if isinstance(y, float) and not np.isfinite(y):
            raise ValueError(f"y is not finite: {y!r}")
        try:
            k = self._class_index.get(y)
        except TypeError:
            raise ValueError(f"y must be hashable, got {type(y).__name__}") from None
        return k

    def _add_class(self, y) -> int:
        k = len(self._classes)
        self._classes.append(y)
        self._class_index[y] = k
        self._n_outputs = k + 1
        if self._cfg is not None:
            self._resize()
        return k

    def learn_one(self, x: dict, y) -> None:
        self.learn_one_loss(x, y)

    def learn_one_loss(self, x: dict, y) -> float:
        """`learn_one` that also returns -ln p(y | past, x) of the prediction made before learning
        (in nats; divide by ln 2 for bits). It costs nothing extra: the forward pass that learns
        computes it."""
        k = self._target_index(y)
        if k is None:
            # validate x before the class set grows, so bad input leaves the model as it was
            self._vectorize(x, learn=False)
            k = self._add_class(y)
        return self._learn(x, float(k))

    def predict_proba_one(self, x: dict) -> dict:
        out = self._predict_out(x)
        if out is None:
            return {}
        return {c: float(p) for c, p in zip(self._classes, out)}
