"""Streaming anomaly detectors on the Numenta Anomaly Benchmark, scored as NAB scores them.

Every NAB series, one pass, each value scored before it is learned; the scores go through NAB's
scoring (``nab_scoring``: anomaly windows, the scaled sigmoid, the three profiles, one threshold
per profile optimised over the whole corpus, normalised so that the null detector is 0 and the
perfect one 100). All detectors run in the same process, one after the other, and their cost per
event is measured in the same run.

The scorer is checked against NAB's published results first: NAB's windowed Gaussian,
implemented here, must come out at NAB's published scores (39.65 standard, 20.87 reward-low-FP,
47.41 reward-low-FN, from NAB's ``results/final_results.json``); the run says whether it does.

    python benchmarks/bench_nab.py                       # every detector, the whole corpus
    python benchmarks/bench_nab.py --detectors gaussian  # one
    python benchmarks/bench_nab.py --nab ../shared/datasets/nab
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np
from river import anomaly, linear_model, optim, preprocessing, time_series

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from nab_scoring import PROFILES, load_corpus, optimise, windowed_gaussian  # noqa: E402

DEFAULT_NAB = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "nab"

# NAB's results/final_results.json (numenta/NAB, v1.1): references, printed beside the run's scores
PUBLISHED = {
    "windowed Gaussian (NAB)": (39.649523496077585, 20.86798582474138, 47.4100271583046),
    "Numenta HTM (published)": (70.10105611943965, 63.11684160219828, 74.3202443095115),
}


def _river_scores(make, values, learn_takes_y):
    """Scores of a River anomaly detector over ``values``, each scored before it is learned."""
    model = make()
    out = np.empty(len(values))
    for i, v in enumerate(values.tolist()):
        if learn_takes_y:
            out[i] = model.score_one(None, v)
            model.learn_one(None, v)
        else:
            x = {"value": v}
            out[i] = model.score_one(x)
            model.learn_one(x)
    return out


def half_space_trees(values):
    # River's own recipe: HalfSpaceTrees wants features in [0, 1]
    return _river_scores(lambda: preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42), values, False)


def pad_snarimax(values):
    # River's PredictiveAnomalyDetection example, without the monthly season NAB's series lack
    def make():
        model = time_series.SNARIMAX(p=2, d=1, q=1, regressor=preprocessing.StandardScaler()
                                     | linear_model.LinearRegression(optimizer=optim.SGD(0.005)))
        return anomaly.PredictiveAnomalyDetection(model, horizon=1, n_std=3.5, warmup_period=15)
    return _river_scores(make, values, True)


def pad_streamrnn(values):
    # what a streamrnn user can do today: River's wrapper around the recurrent forecaster
    import streamrnn

    def make():
        return anomaly.PredictiveAnomalyDetection(streamrnn.RecurrentForecaster(seed=0), horizon=1, n_std=3.5,
                                                  warmup_period=15)
    return _river_scores(make, values, True)


def streamrnn_detector(values, timestamps=None):
    import streamrnn

    detector = streamrnn.RecurrentAnomalyDetector(seed=0)
    out = np.empty(len(values))
    for i, v in enumerate(values.tolist()):
        x = {"value": v} if timestamps is None else {"value": v, "time": timestamps[i]}
        out[i] = detector.score_one(x)
        detector.learn_one(x)
    return out


DETECTORS = {
    "gaussian": ("windowed Gaussian (NAB)", windowed_gaussian),
    "hst": ("River HalfSpaceTrees", half_space_trees),
    "pad-snarimax": ("River PAD(SNARIMAX)", pad_snarimax),
    "pad-streamrnn": ("River PAD(RecurrentForecaster)", pad_streamrnn),
    "streamrnn": ("streamrnn RecurrentAnomalyDetector()", streamrnn_detector),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nab", default=str(DEFAULT_NAB), help="NAB's data/ and labels/ (default: %(default)s)")
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated, of: " + ", ".join(DETECTORS))
    args = ap.parse_args(argv)
    chosen = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in chosen if d not in DETECTORS]
    if unknown:
        ap.error(f"unknown detector(s) {', '.join(unknown)}; known: {', '.join(DETECTORS)}")
    corpus = load_corpus(args.nab)
    events = sum(len(f.values) for f in corpus)
    print(f"NAB: {len(corpus)} series, {events:,} events, {sum(len(f.windows) for f in corpus)} anomaly windows\n")
    rows = []
    for key in chosen:
        name, detect = DETECTORS[key]
        start = time.perf_counter()
        scores, per_file = [], []
        for f in corpus:
            t = time.perf_counter()
            scores.append(detect(f.values))
            per_file.append((time.perf_counter() - t) / len(f.values) * 1e6)
        elapsed = time.perf_counter() - start
        results = [optimise(corpus, scores, p) for p in PROFILES]
        rows.append((name, [r.normalised for r in results], statistics.median(per_file), elapsed, results[0]))
        print(f"  {name}: {elapsed:.1f} s", flush=True)
    print()
    head = f"| detector | {' | '.join(p.name for p in PROFILES)} | µs/event (median over series) | windows detected, FP (standard) |"
    print(head)
    print("|---|" + "---:|" * (len(PROFILES) + 2))
    for name, scores, us, _, std in rows:
        print(f"| {name} | {' | '.join(f'{s:.1f}' for s in scores)} | {us:.1f} | {std.tp}, {std.fp} |")
    for name, scores in PUBLISHED.items():
        print(f"| {name}: NAB's results | {' | '.join(f'{s:.1f}' for s in scores)} | | |")
    for name, scores, *_ in rows:
        if name in PUBLISHED:
            same = all(abs(a - b) < 1e-6 for a, b in zip(scores, PUBLISHED[name]))
            print(f"\nscorer check: {name} {'matches' if same else 'DOES NOT match'} NAB's published scores"
                  f" ({', '.join(f'{s:.4f}' for s in scores)} against {', '.join(f'{s:.4f}' for s in PUBLISHED[name])})")
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
