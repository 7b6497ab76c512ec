"""Bits per symbol: the cross-entropy of a next-symbol model in bits, the unit text compression
is judged in (and the cost, per symbol, of an arithmetic coder driven by the model)."""

from __future__ import annotations

import math

from river import metrics

__all__ = ["BitsPerSymbol"]

# the same floor as River's LogLoss and CrossEntropy: a probability of 0 costs -log2(1e-15) bits
_FLOOR = 1e-15


class BitsPerSymbol(metrics.base.MeanMetric, metrics.base.MultiClassMetric):
    """Mean surprise of the true symbol, -log2 p(y), over the predicted class probabilities.

    Unlike River's `CrossEntropy`, a symbol that is missing from the probabilities (one the
    model has never seen, so the softmax has no output for it) is not free: it costs
    -log2(1e-15), about 49.8 bits, the floor River's log losses clamp to. A coder would spend
    about that much to escape to a new symbol and spell it out.

    Examples
    --------

    >>> from river import datasets
    >>> from connectors.text import iter_text
    >>> import streamrnn
    >>> from streamrnn.metrics import BitsPerSymbol

    >>> text = "the cat sat on the mat. " * 40
    >>> model = streamrnn.RecurrentClassifier(hidden_size=16, embedding_size=8, seed=0)
    >>> bits, first_order = BitsPerSymbol(), BitsPerSymbol()
    >>> counts = {}
    >>> for x, y in iter_text(text):
    ...     bits.update(y, model.predict_proba_one(x))
    ...     model.learn_one(x, y)
    ...     total = sum(counts.values())  # the symbol frequencies so far: a memoryless coder
    ...     first_order.update(y, {s: n / total for s, n in counts.items()})
    ...     counts[y] = counts.get(y, 0) + 1

    >>> bits
    BitsPerSymbol: ...
    >>> bits.get() < first_order.get()
    True

    """

    _fmt = ",.4f"

    @property
    def bigger_is_better(self):
        return False

    @property
    def requires_labels(self):
        return False

    def _eval(self, y_true, y_pred):
        p = y_pred.get(y_true, 0.0) if y_pred else 0.0
        return -math.log2(min(max(p, _FLOOR), 1.0))
