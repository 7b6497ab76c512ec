"""Detect anomalies on a series of the Numenta Anomaly Benchmark, and plot the series, the scores
and NAB's labelled anomaly windows.

    python examples/detect_nab.py [--nab ../shared/datasets/nab]
        [--series realKnownCause/machine_temperature_system_failure.csv] [--out nab.png]

Each value is scored before it is learned, as on a live stream. The run prints the alerts at the
default threshold (a tail probability of 1e-4) and which labelled windows they fall in.
"""

import argparse
import csv
import datetime as dt
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import streamrnn
from streamrnn.detector import DEFAULT_THRESHOLD

DEFAULT_NAB = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nab", default=str(DEFAULT_NAB), help="NAB's data/ and labels/")
    ap.add_argument("--series", default="realKnownCause/machine_temperature_system_failure.csv")
    ap.add_argument("--out", default="nab.png")
    args = ap.parse_args()
    nab = pathlib.Path(args.nab)
    windows = [[dt.datetime.fromisoformat(t) for t in w]
               for w in json.loads((nab / "labels" / "combined_windows.json").read_text())[args.series]]
    detector = streamrnn.RecurrentAnomalyDetector(seed=0)
    times, values, scores = [], [], []
    with open(nab / "data" / args.series, newline="") as f:
        for row in csv.DictReader(f):
            x = {"value": float(row["value"])}
            times.append(dt.datetime.fromisoformat(row["timestamp"]))
            values.append(x["value"])
            scores.append(detector.score_one(x))
            detector.learn_one(x)
    alerts = [(t, s) for t, s in zip(times, scores) if s >= DEFAULT_THRESHOLD]
    inside = [any(a <= t <= b for a, b in windows) for t, _ in alerts]
    found = [any(a <= t <= b for t, _ in alerts) for a, b in windows]
    print(f"{args.series}: {len(values):,} values, {len(alerts)} alerts at score >= {DEFAULT_THRESHOLD:g} "
          f"({sum(inside)} inside a labelled window); windows found: {sum(found)} of {len(windows)}")
    for (t, s), hit in zip(alerts, inside):
        print(f"  {t:%Y-%m-%d %H:%M}  score {s:.2f}  {'in a window' if hit else 'outside the windows'}")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for ax in (top, bottom):
        for a, b in windows:
            ax.axvspan(a, b, color="tab:red", alpha=0.15, lw=0)
    top.plot(times, values, lw=0.6, color="tab:blue")
    top.set_ylabel("value")
    top.set_title(f"{args.series}: NAB's anomaly windows shaded")
    bottom.plot(times, scores, lw=0.6, color="tab:gray")
    bottom.axhline(DEFAULT_THRESHOLD, color="tab:red", lw=0.8, ls="--", label="default threshold")
    bottom.scatter([t for t, _ in alerts], [s for _, s in alerts], s=12, color="tab:red", zorder=3, label="alerts")
    bottom.set_ylabel("anomaly score")
    bottom.set_ylim(0, 1.05)
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
