"""The baseline a run's metric is printed beside: what a model must beat to be worth running.

Regression and forecasting: persistence (the previous target, per key; 0 before the first).
Classification: the most frequent label so far, per key (its frequencies as probabilities, for a
probability metric such as LogLoss). Predicted before learning, on the same events as the model,
with a copy of the run's metric, so the two figures compare like with like.
"""

from __future__ import annotations

import collections


class Baseline:
    def __init__(self, task: str, metric):
        self.task = task
        self.metric = metric.clone()
        self.needs_proba = task == "classify" and not getattr(metric, "requires_labels", True)
        self.last: dict = {}  # key -> the previous target
        self.counts: dict = {}  # key -> Counter of the labels so far

    def update(self, key, y, score=True):
        """Score the baseline's prediction of ``y`` (if ``score``: the run's metric scored the model
        on this event), then learn it."""
        if self.task != "classify":
            if score:
                self.metric.update(y, self.last.get(key, 0.0))
            self.last[key] = y
            return
        counts = self.counts.setdefault(key, collections.Counter())
        if score and self.needs_proba:
            total = sum(counts.values())
            self.metric.update(y, {label: n / total for label, n in counts.items()} if total else {})
        elif score:
            self.metric.update(y, counts.most_common(1)[0][0] if counts else None)
        counts[y] += 1

    @property
    def name(self) -> str:
        return "the most frequent label" if self.task == "classify" else "persistence"

    def state(self) -> dict:
        """What a checkpoint keeps (values for :func:`streamrnn.persist.encode`)."""
        return {"last": dict(self.last), "counts": {k: dict(c) for k, c in self.counts.items()}}

    def restore(self, metric, state: dict):
        if type(metric) is not type(self.metric) or type(state) is not dict or set(state) != {"last", "counts"}:
            raise ValueError("not a baseline of this run's metric")
        last, counts = state["last"], state["counts"]
        if type(last) is not dict or type(counts) is not dict or not all(type(c) is dict for c in counts.values()):
            raise ValueError("malformed baseline state")
        if not all(type(v) in (int, float) for v in last.values()) or not all(
                type(n) is int and n > 0 for c in counts.values() for n in c.values()):
            raise ValueError("malformed baseline state")
        self.metric = metric
        self.last = dict(last)
        self.counts = {k: collections.Counter(c) for k, c in counts.items()}
