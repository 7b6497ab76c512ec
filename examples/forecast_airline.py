"""Forecast River's AirlinePassengers online, one step ahead, and plot it against the truth.

    python examples/forecast_airline.py [--out airline.png]

Each month is forecast before it is learned; the plot shows the series, the one-step forecasts of
streamrnn's default forecaster and of persistence, and the next 12 months from the end with their
90% prediction interval.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from river import datasets, metrics

import streamrnn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="airline.png")
    args = ap.parse_args()
    model = streamrnn.RecurrentForecaster(seed=0)
    months, truth, preds, persist = [], [], [], []
    mae, mae_persist = metrics.MAE(), metrics.MAE()
    last = None
    for x, y in datasets.AirlinePassengers():
        if last is not None:
            f = model.forecast(1, [x])[0]
            preds.append(f)
            persist.append(last)
            mae.update(y, f)
            mae_persist.update(y, last)
        months.append(x["month"])
        truth.append(y)
        model.learn_one(y, x)
        last = y
    print(f"one step ahead: streamrnn {mae}, persistence {mae_persist}; seasonal period found: {model.periods}")
    end = months[-1]
    future = [end.replace(year=end.year + (end.month + k - 1) // 12, month=(end.month + k - 1) % 12 + 1)
              for k in range(1, 13)]
    xs = [{"month": when} for when in future]
    ahead = model.forecast(12, xs)
    bounds = model.forecast_interval(12, 0.9, xs)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(months, truth, label="passengers", color="black", linewidth=1.5)
    ax.plot(months[1:], preds, label=f"streamrnn, one step ahead ({mae})", color="C0")
    ax.plot(months[1:], persist, label=f"persistence ({mae_persist})", color="C1", alpha=0.6, linestyle="--")
    ax.plot(future, ahead, label="streamrnn, the next 12 months", color="C2")
    ax.fill_between(future, [lo for lo, _ in bounds], [hi for _, hi in bounds], color="C2", alpha=0.2,
                    label="90% prediction interval")
    ax.set_title("AirlinePassengers, learned online")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
