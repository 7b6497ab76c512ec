"""Recurrent classifier."""

from __future__ import annotations

import math

import numpy as np
from river import base as river_base

from .errors import BadInput
from .base import RecurrentEstimator
from .kernels import engine as E

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
        Recurrent cell: `"lstm"`, `"gru"`, `"rnn"` or `"mingru"` (no recurrent matrix: cheaper with many units).
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
    ngram_order
        Direct n-gram connections (Mikolov's RNN-ME; needs `embedding_size`): the contexts of
        orders 1..`ngram_order` of the first categorical feature (its current value and the
        previous ones) are hashed to rows of a table that add to the logits and learn by SGD on
        every event. Counts-like statistics learned at once, beside the network; the usual choice
        for text (see `connectors.text`). 0 turns them off.
    ngram_buckets
        Rows of the n-gram hash table (memory: rows x classes).
    ngram_lr
        SGD learning rate of the n-gram rows.
    dtype
        `"float32"` (the default: twice the vector lanes and half the memory traffic) or
        `"float64"`.
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
        ngram_order: int = 0,
        ngram_buckets: int = 1 << 16,
        ngram_lr: float = 0.5,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        self.ngram_order = ngram_order
        self.ngram_buckets = ngram_buckets
        self.ngram_lr = ngram_lr
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
        if not isinstance(ngram_order, int) or ngram_order < 0:
            raise ValueError(f"ngram_order must be a non-negative integer, got {ngram_order!r}")
        if ngram_order:
            if embedding_size is None:
                raise ValueError("ngram_order needs embedding_size: the n-gram context is read from the embedded tokens")
            if ngram_order > truncation + 1:
                raise ValueError("ngram_order must not exceed truncation + 1 (the window holds the context)")
            if not isinstance(ngram_buckets, int) or ngram_buckets < 1:
                raise ValueError(f"ngram_buckets must be a positive integer, got {ngram_buckets!r}")
            if not ngram_lr > 0:
                raise ValueError(f"ngram_lr must be positive, got {ngram_lr!r}")
        self._n_outputs = 0
        self._classes: list = []
        self._class_index: dict = {}
        self._last_y = None

    @classmethod
    def _unit_test_params(cls):
        yield {"cell": "lstm", "hidden_size": 8, "seed": 1}
        yield {"cell": "gru", "hidden_size": 8, "truncation": 4, "update_every": 2, "seed": 1}
        yield {"cell": "rnn", "hidden_size": 8, "num_layers": 2, "optimizer": "rmsprop", "seed": 1}
        yield {"cell": "lstm", "hidden_size": 8, "embedding_size": 4, "ngram_order": 3, "ngram_buckets": 64, "seed": 1}

    def _check_state(self, state):
        super()._check_state(state)
        classes = state["_classes"]
        if type(classes) is not list or not all(_is_label(c) for c in classes):
            raise ValueError("bad class labels")
        if state["_class_index"] != {c: i for i, c in enumerate(classes)} or len(state["_class_index"]) != len(classes):
            raise ValueError("class index does not match the classes")
        if state["_n_outputs"] != len(classes):
            raise ValueError("outputs do not match the classes")
        if state["_last_y"] is not None and state["_last_y"] not in state["_class_index"]:
            raise ValueError("last label is not a class")

    @property
    def _multiclass(self):
        return True

    def _head(self):
        return "softmax"

    def _ngram(self):
        if not self.ngram_order:
            return 0, 0, 0.0
        return self.ngram_order, self.ngram_buckets, self.ngram_lr

    def _target_index(self, y) -> int:
        if y is None:
            raise BadInput("y is None")
        if isinstance(y, float) and not np.isfinite(y):
            raise BadInput(f"y is not finite: {y!r}")
        try:
            k = self._class_index.get(y)
        except TypeError:
            raise BadInput(f"y must be hashable, got {type(y).__name__}") from None
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
        """`learn_one` that also returns the surprise -ln p(y | past, x) of the prediction made
        before learning it, in nats (divide by ln 2 for bits). It costs nothing extra: the forward
        pass that learns computes it. A class never seen before had probability 0: the surprise
        is ``inf`` (a compressor codes such a symbol with an escape)."""
        k = self._target_index(y)
        novel = k is None
        if novel:
            # validate x before the class set grows, so bad input leaves the model as it was
            self._vectorize(x, learn=False)
            k = self._add_class(y)
        loss = self._learn(x, float(k))
        self._last_y = y
        return math.inf if novel else loss

    def generate(self, n: int, feature: str = "prev", temperature: float = 1.0, seed: int | None = None,
                 x: dict | None = None) -> list:
        """Sample a continuation of ``n`` classes from the current state, each fed back as the
        next input ``feature`` (as the text connectors frame it), without changing the model.

        The first input is the last class learned. ``temperature`` < 1 sharpens the distribution,
        > 1 flattens it. The same ``seed`` gives the same sample. ``x`` holds other features,
        constant over the continuation.
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if self._cfg is None or n <= 0:
            return []
        inputs = dict(x or {})
        inputs[feature] = self._last_y
        self._vectorize(inputs, learn=False)
        O = self._cfg.n_outputs
        col_of_class = np.full(O, -1, dtype=np.int64)
        tok_of_class = np.full(O, -1.0, dtype=self._mem.dtype)
        for c, label in enumerate(self._classes):
            key = (feature, str(label))
            if key in self._features:
                col_of_class[c] = self._features[key]
            if key in self._tokens_index:
                tok_of_class[c] = self._tokens_index[key]
        slot = self._slots.get(feature, -1)
        uniforms = np.random.default_rng(seed).random(n)
        out = np.zeros(n, dtype=np.int64)
        enc = self._encoder
        E.generate(self._mem, self._meta, self._scratch, enc.xbuf.copy(), enc.present.copy(),
                   enc.tokens.copy(), slot, col_of_class, tok_of_class, uniforms, float(temperature), out)
        return [self._classes[c] for c in out]

    def predict_proba_one(self, x: dict) -> dict:
        out = self._predict_out(x)
        if out is None:
            return {}
        probs = out.astype(np.float64)
        probs /= probs.sum()  # float32 sums are 1 only to ~1e-7; River expects 1 to 1e-9
        return dict(zip(self._classes, probs.tolist()))


def _is_label(y) -> bool:
    """A class label the state format carries (River's labels: strings, numbers, booleans)."""
    return type(y) in (str, int, bool) or (type(y) is float and math.isfinite(y))
