"""Decoded records -> ``(x, y)`` for the runner's tasks: which fields are the target and the
features, and which values a model may be given (finite numbers, categories as strings)."""

from __future__ import annotations

import math

from .errors import BadInput

TASKS = ("regress", "classify", "forecast")


class BadRecord(BadInput):
    """A decoded record that cannot be fed to the model (missing or ill-typed fields)."""


def _number(value, what):
    if type(value) is float and value - value == 0.0:
        return value  # the common case: a finite float, as JSON gives it
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:
            raise BadRecord(f"{what} is too large for a float") from None
    elif isinstance(value, str):
        try:
            v = float(value)
        except ValueError:
            raise BadRecord(f"{what} is not numeric: {value[:40]!r}") from None
    else:
        raise BadRecord(f"{what} is not numeric: {type(value).__name__}")
    if not math.isfinite(v):
        raise BadRecord(f"{what} is not finite: {value!r}")
    return v


class RecordReader:
    """Turns a decoded record into ``(x, y)`` for a task, or raises :class:`BadRecord`.

    With ``features`` given, exactly those fields are read as numbers (``categorical`` ones as
    strings) and each must be present. Otherwise every field but the target, the key and the
    timestamp is a feature: numbers (and numeric strings, as CSV gives them) are numeric, other
    strings categorical, nulls missing.
    """

    def __init__(self, task, target, features=None, categorical=None, exclude=()):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.target = target
        self.features = list(features or [])
        self.categorical = list(categorical or [])
        self.exclude = {target, *[e for e in exclude if e]}

    def read(self, record: dict):
        if self.target not in record or record[self.target] is None:
            raise BadRecord(f"missing target field {self.target!r}")
        raw_y = record[self.target]
        if self.task == "classify":
            if isinstance(raw_y, (dict, list)):
                raise BadRecord(f"target {self.target!r} is not a label: {type(raw_y).__name__}")
            if isinstance(raw_y, float) and not math.isfinite(raw_y):
                raise BadRecord(f"target {self.target!r} is not finite")
            y = raw_y
        else:
            y = _number(raw_y, f"target {self.target!r}")
        x = {}
        if self.features or self.categorical:
            for name in self.features:
                if name not in record or record[name] is None:
                    raise BadRecord(f"missing feature field {name!r}")
                x[name] = _number(record[name], f"feature {name!r}")
            for name in self.categorical:
                v = record.get(name)
                if v is not None:
                    if isinstance(v, (dict, list)):
                        raise BadRecord(f"feature {name!r} is not a category: {type(v).__name__}")
                    x[name] = str(v)
            return x, y
        for name, v in record.items():
            if name in self.exclude or v is None:
                continue
            if isinstance(v, (bool, int, float)):
                x[name] = _number(v, f"feature {name!r}")
            elif isinstance(v, str):
                try:
                    x[name] = _number(v, f"feature {name!r}")
                except BadRecord:
                    if v.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
                        raise
                    x[name] = v
            else:
                raise BadRecord(f"feature {name!r} has unsupported type {type(v).__name__}")
        return x, y
