"""Forecast the oil temperature of ETTh1 online with its six load columns, and plot a month.

    python examples/forecast_ett.py [--csv ../shared/datasets/ett/ETTh1.csv] [--out ett.png]

Hourly data, 17,420 rows: the forecaster sees the last value, the loads of the hour and the
calendar, and predicts the next oil temperature before learning it.
"""

import argparse
import csv
import datetime as dt
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from river import metrics

import streamrnn

DEFAULT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ett" / "ETTh1.csv"
LOADS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(DEFAULT))
    ap.add_argument("--out", default="ett.png")
    args = ap.parse_args()
    model = streamrnn.RecurrentForecaster(seed=0)
    mae, mae_persist = metrics.MAE(), metrics.MAE()
    times, truth, preds = [], [], []
    last = None
    with open(args.csv, newline="") as f:
        for row in csv.DictReader(f):
            x = {c: float(row[c]) for c in LOADS}
            x["time"] = dt.datetime.fromisoformat(row["date"])
            y = float(row["OT"])
            if last is not None:
                p = model.forecast(1, [x])[0]
                mae.update(y, p)
                mae_persist.update(y, last)
                times.append(x["time"])
                truth.append(y)
                preds.append(p)
            model.learn_one(y, x)
            last = y
    print(f"one step ahead: streamrnn {mae}, persistence {mae_persist}")
    window = slice(-24 * 30, None)  # the last month
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(times[window], truth[window], label="oil temperature", color="black", linewidth=1.2)
    ax.plot(times[window], preds[window], label=f"streamrnn, one step ahead (whole series {mae})", color="C0")
    ax.set_title("ETTh1 OT, the last 30 days of an online pass")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
