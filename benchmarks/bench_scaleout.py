"""Scale-out with per-key models over a Kafka consumer group, through a real local broker.

- The ceiling, in every round beside the Kafka runs: the same per-key work from a JSONL file in
  one process, then in two processes at once (each over the keys of half the partitions). On a
  machine whose two cores share a physical core, its caches or a busy neighbour, two processes do
  not give 2x even without Kafka; each round's Kafka ratio is to be read against its ceiling.
- Throughput with 1 and with 2 workers (`streamrnn run --key` started once or twice in the same
  group): N events over K keys and 8 partitions, predictions per second from the first to the last
  prediction's timestamp, and while every worker was busy (from the last worker's first
  prediction to the first worker's last: a worker that joins or restores a second late stretches
  the first measure, not the second). One LSTM per key. The broker is warmed up first (three drains of the
  same volume: its JVM compiles its hot paths under load) and uses Kafka's default initial
  rebalance delay (3 s), so that workers started together share the first assignment; the
  workers' producers linger 50 ms (a throughput setting). Rounds alternate the order of the 1- and
  2-worker runs; medians are reported.
- Memory per key model: the serialised size of one LSTM hidden 32, truncation 16, Adam, float32
  forecaster (what the state store and the cold cache hold), and its live arrays.
- Restore time: 10,000 key models written to a changelog partition, then read back by
  ``restore_partition`` over a changelog store, every record checked (what a worker does when a
  partition is assigned to it).

    python benchmarks/bench_scaleout.py [--events 150000] [--keys 1000] [--rounds 3] [--restore-models 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import streamrnn  # noqa: E402
from connectors.changelog import ChangelogStore, ConfluentChangelogStore  # noqa: E402
from streamrnn import persist  # noqa: E402
from streamrnn.state import restore_partition, write_partition  # noqa: E402

MODEL = ["--hidden-size", "32", "--update-every", "4", "--seed", "0"]
# Producer linger of the workers' prediction and changelog producers: a throughput setting. At
# ~9k events/s a 5 ms linger makes ~45-record requests, and this broker then spends 40-60% of a
# core on them (measured here); 50 ms cuts that to ~13%, on the cores the workers need.
LINGER_MS = 50


def produce(bootstrap, topic, n, keys):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 8, 1)])[topic].result()
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    counts = {}
    for i in range(n):
        k, value = _event_value(i, keys, counts)
        value = value.encode()
        while True:
            try:
                p.produce(topic, value, key=k.encode())
                break
            except BufferError:  # the local queue is full: let it drain
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    p.flush()


def drain(bootstrap, src, workers, client, checkpoint_every):
    """Run ``workers`` workers over topic ``src`` to its end. Returns the number of predictions, the
    seconds from the first to the last, the events per second while every worker was busy (from
    the last worker's first prediction to the first worker's last: ramp-up and ramp-down skew
    left out) and the workers' stderr."""
    out, group = f"so-out-{uuid.uuid4().hex[:6]}", f"so-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{bootstrap}/{src}",
           "--sink", f"kafka://{bootstrap}/{out}", "--task", "forecast", "--target", "v", "--key", "key",
           "--group", group, "--idle-timeout", "8", "--checkpoint-every", str(checkpoint_every), "--quiet",
           "--kafka-client", client, "--kafka-option", f"linger_ms={LINGER_MS}", *MODEL]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    errs = [p.communicate()[1] for p in procs]
    # which input partitions each worker held (its summary lists them), and so which predictions
    # are its own: a prediction carries its event's key
    owner = {}
    for w, err in enumerate(errs):
        for line in err.splitlines():
            if "restored at markers" in line:
                for p in re.findall(r"/(\d+)'", line):
                    owner[int(p)] = w
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([out])
    stamps, by_worker, idle = [], {}, time.monotonic()
    while time.monotonic() - idle < 5:
        msgs = c.consume(5000, 0.5)
        if msgs:
            idle = time.monotonic()
            for m in msgs:
                if m.error() is None:
                    ts = m.timestamp()[1] / 1000.0
                    stamps.append(ts)
                    by_worker.setdefault(owner.get(_partition(m.key() or b"")), []).append(ts)
    c.close()
    start = max(min(v) for v in by_worker.values())
    end = min(max(v) for v in by_worker.values())
    busy = sum(start <= ts <= end for ts in stamps) / (end - start) if end > start else float("nan")
    return len(stamps), max(stamps) - min(stamps), busy, errs


def _partition(key: bytes) -> int:
    """The input partition of ``key``: librdkafka's default partitioner, as ``produce`` uses it."""
    return zlib.crc32(key) % 8


def _event_value(i, keys, counts):
    k = f"k{(i * 7919) % keys}"
    t = counts[k] = counts.get(k, 0) + 1
    return k, json.dumps({"key": k, "v": round(math.sin(t / 5 + int(k[1:]) % 7), 6)})


class Ceiling:
    """The same per-key work without Kafka: ``streamrnn run`` over a JSONL file, once over all
    events, or twice at the same time, each process over the keys of 4 of the 8 partitions
    (librdkafka's default partitioner, CRC32 of the key, as the Kafka run's producer), without
    checkpoints. The ratio of the two is what this machine's two cores give this workload with no
    broker and no Kafka client sharing them: the ceiling of the Kafka ratio."""

    def __init__(self, n, keys):
        self.work = tempfile.mkdtemp(prefix="bench-ceiling-")
        halves = [open(os.path.join(self.work, f"half{h}.jsonl"), "w") for h in (0, 1)]
        with open(os.path.join(self.work, "all.jsonl"), "w") as every:
            counts = {}
            for i in range(n):
                k, line = _event_value(i, keys, counts)
                every.write(line + "\n")
                halves[_partition(k.encode()) // 4].write(line + "\n")
        for f in halves:
            f.close()

    def rate(self, processes):
        """Events per second of 1 process over all events, or the sum of 2 over the halves."""
        names = ["all"] if processes == 1 else ["half0", "half1"]
        procs = [subprocess.Popen(
            [sys.executable, "-m", "streamrnn.cli", "run", "--source", os.path.join(self.work, f"{name}.jsonl"),
             "--sink", os.path.join(self.work, f"out-{name}.jsonl"), "--task", "forecast", "--target", "v",
             "--key", "key", "--state", f"dir:{os.path.join(self.work, 'state-' + uuid.uuid4().hex[:6])}",
             "--checkpoint-every", str(10**12), "--checkpoint-interval", "1e9", "--quiet", *MODEL],
            stderr=subprocess.PIPE, text=True) for name in names]
        total = 0.0
        for p in procs:
            err = p.communicate()[1]
            line = next(line for line in err.splitlines() if "events/s)" in line)  # the runner's summary
            total += float(line.rsplit("(", 1)[1].split()[0].replace(",", ""))
        return total


def restore_time(bootstrap, n_models, client):
    model = streamrnn.RecurrentForecaster(hidden_size=32, truncation=16, dtype="float32", seed=0)
    for t in range(100):
        model.learn_one(math.sin(t / 5))
    blobs = {f"k{j}": persist.dumps(model, key=f"k{j}") for j in range(n_models)}
    blob = blobs["k0"]
    cls = ConfluentChangelogStore if client == "confluent" else ChangelogStore
    store = cls(bootstrap, f"so-changelog-{uuid.uuid4().hex[:6]}")
    store.ensure_topic(1)
    start = time.perf_counter()
    for i in range(0, n_models, 500):
        write_partition(store, "in", 0, {f"k{j}": blobs[f"k{j}"] for j in range(i, min(i + 500, n_models))}, i)
        store.flush()
    write = time.perf_counter() - start
    start = time.perf_counter()
    state = restore_partition(store, "in", 0)  # reads and checks every record
    read = time.perf_counter() - start
    start = time.perf_counter()
    live = {k: persist.loads(b) for k, b in state.models.items()}
    revive = time.perf_counter() - start
    store.close()
    assert len(live) == n_models and not state.rejected
    return len(blob), model._mem.nbytes, write, read, revive


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--restore-models", type=int, default=10_000)
    ap.add_argument("--checkpoint-every", type=int, default=50_000)
    ap.add_argument("--kafka-client", default="confluent", choices=["kafka-python", "confluent"])
    args = ap.parse_args(argv)
    from connectors.local_broker import LocalBroker

    ceiling = Ceiling(args.events, args.keys)

    # Kafka's production default initial rebalance delay (the test broker uses 0): workers started
    # together are all in the first assignment, instead of the first taking every partition and
    # handing half over (with their state) moments later
    broker = LocalBroker(tempfile.mkdtemp(prefix="bench-scaleout-"), heap="1g",
                         settings={"group.initial.rebalance.delay.ms": 3000}).start()
    try:
        # warm-up: a fresh broker's JVM spends its first minute or so of load compiling its hot
        # paths, on the cores the workers need (a producer of 5,000 messages/s cost it 46% of a core
        # in the first 8 s and 15% after 40 s, measured here); a production broker is long past that
        warm = f"so-warm-{uuid.uuid4().hex[:6]}"
        produce(broker.bootstrap, warm, args.events, args.keys)
        for workers in (1, 2, 1):
            drain(broker.bootstrap, warm, workers, args.kafka_client, args.checkpoint_every)
        src = f"so-in-{uuid.uuid4().hex[:6]}"
        produce(broker.bootstrap, src, args.events, args.keys)
        # rounds alternate the order (1 then 2 workers, then 2 then 1): this machine's speed drifts by
        # tens of percent over minutes, and the ratio within a round is what drift spares. Each round
        # also runs the same work without Kafka (the idle broker takes ~0.04 of a core), so that each
        # Kafka ratio is read against what the two cores gave at that moment
        rates = {1: [], 2: []}
        busy_rates = {1: [], 2: []}
        ratios, busy_ratios, c_ratios = [], [], []
        for r in range(args.rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            c_rates = {w: ceiling.rate(w) for w in order}
            c_ratios.append(c_rates[2] / c_rates[1])
            for workers in order:
                n, secs, busy, errs = drain(broker.bootstrap, src, workers, args.kafka_client, args.checkpoint_every)
                rates[workers].append(n / secs)
                busy_rates[workers].append(busy)
                print(f"round {r + 1}, {workers} worker(s): {n:,} predictions in {secs:.1f} s = {n / secs:,.0f} events/s "
                      f"({busy:,.0f} events/s while all were busy)", flush=True)
                for e in errs:
                    print("   ", " | ".join(line for line in e.strip().splitlines()[-3:] if "kafka." not in line)[:300])
            ratios.append(rates[2][-1] / rates[1][-1])
            busy_ratios.append(busy_rates[2][-1] / busy_rates[1][-1])
            print(f"round {r + 1}: Kafka {ratios[-1]:.2f}x (while all were busy {busy_ratios[-1]:.2f}x); without Kafka {c_rates[1]:,.0f} -> {c_rates[2]:,.0f} events/s "
                  f"= {c_ratios[-1]:.2f}x", flush=True)
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        print(f"throughput, median of {args.rounds} rounds ({args.events:,} events, {args.keys:,} keys, 8 partitions, "
              f"LSTM-32 TBPTT(4,16) per key, checkpoint every {args.checkpoint_every:,} events, {args.kafka_client}, "
              f"linger {LINGER_MS} ms): 1 worker {one:,.0f} events/s, 2 workers {two:,.0f} events/s")
        print(f"scaling: 2 workers / 1 worker = {statistics.median(ratios):.2f}x (median of the rounds' ratios: "
              f"{', '.join(f'{q:.2f}' for q in ratios)}; ratio of the medians {two / one:.2f}x); while all workers "
              f"were busy: {statistics.median(busy_ratios):.2f}x ({', '.join(f'{q:.2f}' for q in busy_ratios)}; ratio "
              f"of the medians {statistics.median(busy_rates[2]) / statistics.median(busy_rates[1]):.2f}x)")
        print(f"the same work without Kafka (JSONL file, no checkpoints), same rounds: "
              f"{statistics.median(c_ratios):.2f}x ({', '.join(f'{q:.2f}' for q in c_ratios)}); "
              f"Kafka ratio / that ratio, per round: median "
              f"{statistics.median(k / c for k, c in zip(ratios, c_ratios)):.2f}")
        size, live, write, read, revive = restore_time(broker.bootstrap, args.restore_models, args.kafka_client)
        print(f"memory per key model (LSTM-32, truncation 16, Adam, float32): {size / 1024:.1f} KiB serialised, "
              f"{live / 1024:.1f} KiB of live arrays")
        print(f"restore of {args.restore_models:,} key models ({args.kafka_client}): read changelog {read:.1f} s + revive {revive:.1f} s "
              f"(written in {write:.1f} s)")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
