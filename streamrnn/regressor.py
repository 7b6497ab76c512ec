"""Recurrent regressor."""

from __future__ import annotations

from river import base as river_base

from .base import KERNELS, MAX_ABS, RecurrentEstimator

__all__ = ["RecurrentRegressor"]


class RecurrentRegressor(RecurrentEstimator, river_base.Regressor):
    """Stateful recurrent network regressor, learning online with truncated BPTT.

    Each call to `learn_one` is one step of the sequence: the hidden state carries over from event
    to event, and every `update_every` events the gradient of the last `update_every` losses is
    back-propagated through the last `truncation` steps, i.e. TBPTT(`update_every`, `truncation`)
    of Williams & Peng. `predict_one` runs one step from the current state without changing it.

    Inputs and the target are standardised online (running mean and variance) unless `normalize`
    is off, so raw-scale data works. Input dicts may grow: a new feature name adds an input; a
    missing numeric feature reads as its running mean (0 after normalisation); a string value is a
    category, one input per `name=value`.

    Parameters
    ----------
    cell
        Recurrent cell: `"lstm"`, `"gru"`, `"rnn"` (Elman, tanh) or `"mingru"` (no recurrent matrix).
    hidden_size
        Units per layer.
    num_layers
        Stacked recurrent layers.
    truncation
        k2: how many past steps the gradient flows back through. Longer reaches further into the
        past, at a cost linear in `truncation` per update.
    update_every
        k1: one optimizer step every `update_every` events, on the losses of those events. Larger
        values divide the cost of learning by about as much; `update_every` may not exceed
        `truncation`.
    optimizer
        `"adam"`, `"rmsprop"` or `"sgd"` (with momentum 0.9).
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
        `"float32"` (the default: twice the vector lanes and half the memory traffic) or
        `"float64"`.
    seed
        Seed of the weight initialisation.

    Examples
    --------

    >>> from river import datasets, evaluate, metrics, preprocessing
    >>> import streamrnn

    >>> model = streamrnn.RecurrentRegressor(hidden_size=16, seed=42)
    >>> evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE())
    MAE: 0.572...

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

    @classmethod
    def _unit_test_params(cls):
        yield {"cell": "lstm", "hidden_size": 8, "seed": 1}
        yield {"cell": "gru", "hidden_size": 8, "truncation": 4, "update_every": 2, "seed": 1}
        yield {"cell": "rnn", "hidden_size": 8, "num_layers": 2, "optimizer": "sgd", "lr": 0.01, "seed": 1}

    def learn_one(self, x: dict, y: float) -> None:
        # this and predict_one are the per-event path of every River loop: the common cases (a
        # finite float target; the x predict_one just put in the buffers) skip a call each
        if type(y) is not float or y - y != 0.0 or abs(y) > MAX_ABS[self.dtype]:
            y = self._check_target(y)
        if self._encoder is None or not self._encoder.holds(x):
            self._vectorize(x, learn=True)
        KERNELS[self.dtype].learn_event(self._mem, self._meta, self._scratch, y)

    def learn_one_loss(self, x: dict, y: float) -> float:
        """`learn_one` that also returns the squared (or Huber) loss of this event's prediction,
        made before learning it, in normalised units."""
        return self._learn(x, self._check_target(y))

    def predict_learn_one(self, x: dict, y: float) -> float:
        """`predict_one(x)`, then `learn_one(x, y)`: the prequential step, in one kernel call when
        every feature of `x` is known (the streaming runner uses it). Returns the prediction; a
        prediction that is not finite (none should ever be) is returned without learning.

        >>> from river import datasets, metrics
        >>> import streamrnn

        >>> model = streamrnn.RecurrentRegressor(hidden_size=16, seed=42)
        >>> metric = metrics.MAE()
        >>> for x, y in datasets.TrumpApproval():
        ...     metric.update(y, model.predict_learn_one(x, y))
        >>> metric
        MAE: 0.572...

        """
        y = self._check_target(y)
        if self._cfg is not None:
            self._vectorize(x, learn=False)
            if self._encoder.holds_all:  # the buffers hold all of x: nothing for learn_one to add
                return float(KERNELS[self.dtype].predict_learn_event(self._mem, self._meta, self._scratch, y))
        prediction = self.predict_one(x)
        if prediction - prediction == 0.0:  # finite: a non-finite one is returned unlearned
            self._learn(x, y)
        return prediction

    def predict_one(self, x: dict) -> float:
        # _predict_out inlined, and the fast fill tried before _vectorize: see learn_one
        if self._encoder is None or not self._encoder.fast_fill(x):
            if self._cfg is None:
                return 0.0
            self._vectorize(x, learn=False)
        return KERNELS[self.dtype].predict_event(self._mem, self._meta, self._scratch)
