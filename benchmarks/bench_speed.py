"""Per-event cost of streamrnn against River's online baselines, side by side in one run.

Every model runs prequentially through the River API (``predict_one`` then ``learn_one``) on the
same noisy sine stream. Models are timed in interleaved rounds, so that the machine's drift hits
all of them alike; the table gives the median over rounds of microseconds per event, events per
second, achieved GFLOP/s (matrix-vector and matrix-matrix products plus the optimizer; Numba
kernels only) and the ratio to River's LinearRegression on 16 lags.

    python benchmarks/bench_speed.py            # full table
    python benchmarks/bench_speed.py --quick    # fewer rounds

With PyTorch installed (``pip install torch``; not a dependency of streamrnn), the table also has a
plain PyTorch LSTM-32 learning the same way (stateful, TBPTT(1,16), Adam, one thread): the tool
a user would otherwise write, and the anchor of the field notes (889 µs per event there).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

import numpy as np
from river import linear_model, optim, preprocessing, time_series

import streamrnn
from streamrnn import cells


def stream(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(t / 8) + 0.5 * np.sin(t / 23) + 0.1 * rng.normal(size=n)


def flops_per_event(cell, hidden, truncation, update_every, n_in=1, n_out=1):
    spec = cells.lookup(cell)
    gates = spec.gates * hidden
    recurrent = spec.recurrent_rows(hidden)  # 0 for minGRU: no recurrent product
    step = 2 * (n_in + recurrent) * gates + 2 * hidden * n_out
    backward = truncation * (2 * recurrent * gates + 2 * (n_in + recurrent) * gates)
    n_params = (n_in + recurrent + 1) * gates + (hidden + 1) * n_out
    return 2 * step + (backward + 12 * n_params) / update_every


class Recurrent:
    def __init__(self, cell, hidden, update_every, dtype="float64"):
        suffix = "" if dtype == "float64" else " f32"
        self.name = f"streamrnn {cell.upper()}-{hidden} TBPTT({update_every},16){suffix}"
        self.model = streamrnn.RecurrentRegressor(cell=cell, hidden_size=hidden, truncation=16,
                                                  update_every=update_every, seed=0, dtype=dtype)
        self.flops = flops_per_event(cell, hidden, 16, update_every)

    def run(self, values):
        m = self.model
        for v, y in zip(values[:-1], values[1:]):
            x = {"x": v}
            m.predict_one(x)
            m.learn_one(x, y)


class TorchTBPTT:
    """A plain PyTorch LSTM-32 learning online like streamrnn's default: stateful, TBPTT(1,16), Adam.

    PyTorch keeps no graph across optimizer steps, so each event re-runs the last 16 steps from the
    (stored, detached) state before them, then back-propagates; the states the forward passes
    through are stored for the windows to come. One thread, as every other model here."""

    name = "plain PyTorch LSTM-32 TBPTT(1,16)"

    def __init__(self, hidden=32, truncation=16, lr=3e-3):
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.torch = torch
        self.cell = torch.nn.LSTMCell(1, hidden)
        self.head = torch.nn.Linear(hidden, 1)
        self.params = list(self.cell.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.Adam(self.params, lr=lr)
        zero = torch.zeros(1, hidden)
        self.inputs = collections.deque(maxlen=truncation)
        self.states = collections.deque([(zero, zero)], maxlen=truncation + 1)  # before each input
        self.flops = flops_per_event("lstm", hidden, truncation, 1)

    def predict_one(self, x):
        torch = self.torch
        with torch.no_grad():
            h, _ = self.cell(torch.tensor([[x]]), self.states[-1])
            return float(self.head(h))

    def learn_one(self, x, y):
        torch = self.torch
        self.inputs.append(torch.tensor([[x]]))
        state = self.states[-len(self.inputs)]
        new_states = []
        for inp in self.inputs:
            state = self.cell(inp, state)
            new_states.append(state)
        loss = (self.head(state[0]) - y).pow(2).sum() / 2
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        h, c = new_states[-1]
        self.states.append((h.detach(), c.detach()))

    def run(self, values):
        for v, y in zip(values[:-1], values[1:]):
            x = float(v)
            self.predict_one(x)
            self.learn_one(x, float(y))


def torch_model():
    import importlib.util

    return TorchTBPTT() if importlib.util.find_spec("torch") is not None else None


class Lagged:
    """A River regressor on the last 16 values, standardised."""

    def __init__(self, name, model, lags=16):
        self.name = name
        self.model = model
        self.lags = collections.deque([0.0] * lags, maxlen=lags)
        self.flops = None

    def run(self, values):
        m = self.model
        lags = self.lags
        for v, y in zip(values[:-1], values[1:]):
            lags.append(v)
            x = {f"lag{k}": lags[k] for k in range(len(lags))}
            m.predict_one(x)
            m.learn_one(x, y)


class Snarimax:
    name = "river SNARIMAX(2,0,1)"
    flops = None

    def __init__(self):
        self.model = time_series.SNARIMAX(p=2, d=0, q=1)

    def run(self, values):
        m = self.model
        for y in values:
            m.forecast(1)
            m.learn_one(y)


class Default:
    """A streamrnn estimator at its defaults, prequentially: ``step(model, value)`` per value."""

    flops = None

    def __init__(self, name, model, step):
        self.name, self.model, self.step = name, model, step

    def run(self, values):
        m, step = self.model, self.step
        for y in values:
            step(m, y)


FORECASTER = "streamrnn RecurrentForecaster()"
DETECTOR = "streamrnn RecurrentAnomalyDetector()"


def forecast_then_learn(model, y):
    model.forecast(1)
    model.learn_one(y)


def score_then_learn(model, y):
    x = {"value": y}
    model.score_one(x)
    model.learn_one(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 rounds, fewer events")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else args.rounds

    models = []
    for hidden in (32, 128):
        for cell in cells.CELLS:
            for k1 in (1, 4):
                for dtype in ("float64", "float32"):
                    models.append(Recurrent(cell, hidden, k1, dtype))
    torch_tbptt = torch_model()
    if torch_tbptt is not None:
        models.append(torch_tbptt)
    else:
        print("(PyTorch is not installed: no PyTorch row)")
    models.append(Default(FORECASTER, streamrnn.RecurrentForecaster(seed=0), forecast_then_learn))
    models.append(Default(DETECTOR, streamrnn.RecurrentAnomalyDetector(seed=0), score_then_learn))
    models.append(Snarimax())
    models.append(Lagged("river LinearRegression(16 lags)",
                         preprocessing.StandardScaler() | linear_model.LinearRegression(optimizer=optim.SGD(0.01))))

    data = stream(200_000).tolist()  # Python floats, as River's datasets and JSON decoders give
    warm = data[:300]
    for m in models:  # compile and warm up
        m.run(warm)
    per_event = {m.name: [] for m in models}
    start = 300
    for r in range(rounds):
        for m in models:
            n = 300 if "-128" in m.name or "PyTorch" in m.name else 2000
            if args.quick:
                n //= 2
            chunk = data[start : start + n + 1]
            t = time.perf_counter()
            m.run(chunk)
            per_event[m.name].append((time.perf_counter() - t) / n * 1e6)
        start += 2001
    base = statistics.median(per_event["river LinearRegression(16 lags)"])
    print(f"{'model':<40} {'us/event':>9} {'events/s':>10} {'GFLOP/s':>8} {'vs LinReg':>9}")
    for m in models:
        us = statistics.median(per_event[m.name])
        gf = f"{m.flops / us / 1e3:8.1f}" if m.flops else f"{'-':>8}"
        print(f"{m.name:<40} {us:9.1f} {1e6 / us:10,.0f} {gf} {us / base:8.2f}x")
    print(f"(median of {rounds} interleaved rounds; ratio > 1 is slower than LinearRegression)")
    ratio = statistics.median(per_event[DETECTOR]) / statistics.median(per_event[FORECASTER])
    print(f"the anomaly detector costs {ratio:.2f}x the forecaster at the same size")
    if torch_tbptt is not None:
        ref = statistics.median(per_event[torch_tbptt.name])
        for dtype in (" f32", ""):
            name = f"streamrnn LSTM-32 TBPTT(1,16){dtype}"
            us = statistics.median(per_event[name])
            print(f"{name}: {ref / us:.0f}x faster than the plain PyTorch loop (torch {torch_tbptt.torch.__version__})")


if __name__ == "__main__":
    main()
