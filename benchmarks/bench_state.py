"""The cost of the safe state format against pickle, side by side in one run.

A per-key forecaster (LSTM hidden 32, truncation 16, Adam, float32, after 200 events) is saved and
restored N times with ``pickle`` (what the stores did before; unsafe on untrusted bytes) and with
``streamrnn.persist`` (checksum, header and every check of the state before the model is built),
in alternating rounds; medians of the rounds, in microseconds per model, and the ratio.

    python benchmarks/bench_state.py [--models 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import math
import pickle
import statistics
import time

import streamrnn
from streamrnn import persist


def timed(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    model = streamrnn.RecurrentForecaster(seed=0)
    for t in range(200):
        model.forecast(1)
        model.learn_one(math.sin(t / 5))
    pickled, safe = pickle.dumps(model), persist.dumps(model, key="k0")
    results = {k: [] for k in ("pickle save", "persist save", "pickle load", "persist load")}
    for _ in range(args.rounds):
        results["pickle save"].append(timed(lambda: pickle.dumps(model), args.models))
        results["persist save"].append(timed(lambda: persist.dumps(model, key="k0"), args.models))
        results["pickle load"].append(timed(lambda: pickle.loads(pickled), args.models))
        results["persist load"].append(timed(lambda: persist.loads(safe), args.models))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"bytes per model: pickle {len(pickled):,}, persist {len(safe):,}")
    print(f"{'':14} {'pickle us':>10} {'persist us':>11} {'ratio':>6}")
    for what in ("save", "load"):
        a, b = med[f"pickle {what}"], med[f"persist {what}"]
        print(f"{what:14} {a:10.1f} {b:11.1f} {b / a:6.2f}")


if __name__ == "__main__":
    main()
