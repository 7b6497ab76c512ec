"""``streamrnn plot``: a run's predictions against the truth, and its running metric beside the
baseline's, as a PNG (matplotlib: ``pip install "streamrnn[plot]"``).

Reads the JSON Lines a ``streamrnn run --sink file:PATH.jsonl`` wrote. Numbers (regression,
forecasting): the target and the prediction over the events, then the mean absolute error of the
model and of persistence over a moving window. Labels (classification): the running accuracy of the model and of
the most frequent label so far.
"""

from __future__ import annotations

import collections
import json
import math


def read_predictions(path, last=None) -> list[dict]:
    """The records of a predictions file that hold a ``prediction`` and a ``y`` (the last
    ``last`` of them)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}, line {number}: not JSON (a predictions file of streamrnn run?)") from None
            if isinstance(record, dict) and "prediction" in record and "y" in record:
                out.append(record)
    if not out:
        raise ValueError(f"{path} holds no predictions (records with 'prediction' and 'y')")
    return out[-last:] if last else out


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _moving_mean(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot(path, out, last=None, title=None) -> str:
    """Draw the predictions of ``path`` into the PNG ``out``; returns what the lower panel shows."""
    import matplotlib

    matplotlib.use("Agg")  # files, never a window
    import matplotlib.pyplot as plt

    records = read_predictions(path, last)
    numeric = all(_is_number(r["y"]) and _is_number(r["prediction"]) for r in records)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(2, 1))
    steps = range(len(records))
    if numeric:
        ys = [r["y"] for r in records]
        preds = [r["prediction"] for r in records]
        top.plot(steps, ys, lw=0.9, color="black", label="truth")
        top.plot(steps, preds, lw=0.9, color="tab:orange", label="prediction")
        # the error over a moving window, not since the start: the first, cold predictions would
        # dominate a running mean for the whole plot
        window = max(10, len(records) // 50)
        model_abs = [abs(y - p) for y, p in zip(ys, preds)]
        base_abs = [abs(y - previous) for y, previous in zip(ys, [0.0] + ys[:-1])]
        model_curve, base_curve = _moving_mean(model_abs, window), _moving_mean(base_abs, window)
        shown = f"MAE over the last {window} events"
        bottom.plot(steps, model_curve, color="tab:orange", label="model")
        bottom.plot(steps, base_curve, color="gray", ls="--", label="persistence")
        settled = model_curve[window:] + base_curve[window:]
        if settled:  # the first window holds the cold start: scale to what comes after it
            bottom.set_ylim(0, 1.2 * max(settled) or 1.0)
        low, high = min(ys), max(ys)
        margin = 0.1 * (high - low) or 1.0
        top.set_ylim(low - margin, high + margin)  # the truth's range: a cold first guess does not squash it
    else:
        counts: collections.Counter = collections.Counter()
        right = base_right = 0
        model_curve, base_curve = [], []
        for n, r in enumerate(records, 1):
            y = r["y"]
            right += r["prediction"] == y
            base_right += bool(counts) and counts.most_common(1)[0][0] == y
            counts[y] += 1
            model_curve.append(right / n)
            base_curve.append(base_right / n)
        shown = "running accuracy"
        top.plot(steps, [r["prediction"] == r["y"] for r in records], ".", ms=2, color="tab:orange",
                 label="right (1) or wrong (0)")
        bottom.plot(steps, model_curve, color="tab:orange", label="model")
        bottom.plot(steps, base_curve, color="gray", ls="--", label="most frequent label")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_ylabel(shown)
    bottom.set_xlabel("event")
    bottom.legend(loc="upper right", fontsize=8)
    top.set_title(title or f"streamrnn: {path} ({len(records):,} predictions)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return shown
