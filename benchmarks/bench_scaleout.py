"""Scale-out with per-key models over a Kafka consumer group, through a real local broker.

- Throughput with 1 and with 2 workers (`streamrnn run --key` started once or twice in the same
  group): N events over K keys and 8 partitions, predictions per second from the first to the last
  prediction's timestamp. One LSTM per key. The broker is warmed up first (three drains of the
  same volume: its JVM compiles its hot paths under load) and uses Kafka's default initial
  rebalance delay (3 s), so that workers started together share the first assignment; the
  workers' producers linger 50 ms (a throughput setting). Rounds alternate the order of the 1- and
  2-worker runs; medians are reported.
- Memory per key model: the serialised size of one LSTM hidden 32, truncation 16, Adam, float32
  forecaster (what the state store and the cold cache hold), and its live arrays.
- Restore time: 10,000 key models written to a changelog partition, then read back by
  ``ChangelogStore.restore`` (what a worker does when a partition is assigned to it).

    python benchmarks/bench_scaleout.py [--events 150000] [--keys 1000] [--rounds 3] [--restore-models 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import streamrnn  # noqa: E402
from streamrnn.state import ChangelogStore, ConfluentChangelogStore, dumps  # noqa: E402

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
        k = f"k{(i * 7919) % keys}"
        t = counts[k] = counts.get(k, 0) + 1
        value = json.dumps({"key": k, "v": round(math.sin(t / 5 + int(k[1:]) % 7), 6)}).encode()
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
    out, group = f"so-out-{uuid.uuid4().hex[:6]}", f"so-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{bootstrap}/{src}",
           "--sink", f"kafka://{bootstrap}/{out}", "--task", "forecast", "--target", "v", "--key", "key",
           "--group", group, "--idle-timeout", "8", "--checkpoint-every", str(checkpoint_every), "--quiet",
           "--kafka-client", client, "--kafka-option", f"linger_ms={LINGER_MS}", *MODEL]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    errs = [p.communicate()[1] for p in procs]
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([out])
    stamps, idle = [], time.monotonic()
    while time.monotonic() - idle < 5:
        msgs = c.consume(5000, 0.5)
        if msgs:
            idle = time.monotonic()
            stamps += [m.timestamp()[1] for m in msgs if m.error() is None]
    c.close()
    return len(stamps), (max(stamps) - min(stamps)) / 1000.0, errs


def restore_time(bootstrap, n_models, client):
    model = streamrnn.RecurrentForecaster(hidden_size=32, truncation=16, dtype="float32", seed=0)
    for t in range(100):
        model.learn_one(math.sin(t / 5))
    blob = dumps(model)
    cls = ConfluentChangelogStore if client == "confluent" else ChangelogStore
    store = cls(bootstrap, f"so-changelog-{uuid.uuid4().hex[:6]}")
    store.ensure_topic(1)
    start = time.perf_counter()
    for i in range(0, n_models, 500):
        store.write("in", 0, {f"k{j}": blob for j in range(i, min(i + 500, n_models))}, i)
        store.flush()
    write = time.perf_counter() - start
    start = time.perf_counter()
    models, marker = store.restore("in", 0)
    read = time.perf_counter() - start
    start = time.perf_counter()
    live = {k: __import__("pickle").loads(b) for k, b in models.items()}
    revive = time.perf_counter() - start
    store.close()
    assert len(live) == n_models
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
        # tens of percent over minutes, and the ratio within a round is what drift spares
        rates = {1: [], 2: []}
        ratios = []
        for r in range(args.rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                n, secs, errs = drain(broker.bootstrap, src, workers, args.kafka_client, args.checkpoint_every)
                rates[workers].append(n / secs)
                print(f"round {r + 1}, {workers} worker(s): {n:,} predictions in {secs:.1f} s = {n / secs:,.0f} events/s",
                      flush=True)
                for e in errs:
                    print("   ", " | ".join(line for line in e.strip().splitlines()[-3:] if "kafka." not in line)[:300])
            ratios.append(rates[2][-1] / rates[1][-1])
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        print(f"throughput, median of {args.rounds} rounds ({args.events:,} events, {args.keys:,} keys, 8 partitions, "
              f"LSTM-32 TBPTT(4,16) per key, checkpoint every {args.checkpoint_every:,} events, {args.kafka_client}, "
              f"linger {LINGER_MS} ms): 1 worker {one:,.0f} events/s, 2 workers {two:,.0f} events/s")
        print(f"scaling: 2 workers / 1 worker = {statistics.median(ratios):.2f}x (median of the rounds' ratios: "
              f"{', '.join(f'{q:.2f}' for q in ratios)})")
        size, live, write, read, revive = restore_time(broker.bootstrap, args.restore_models, args.kafka_client)
        print(f"memory per key model (LSTM-32, truncation 16, Adam, float32): {size / 1024:.1f} KiB serialised, "
              f"{live / 1024:.1f} KiB of live arrays")
        print(f"restore of {args.restore_models:,} key models ({args.kafka_client}): read changelog {read:.1f} s + revive {revive:.1f} s "
              f"(written in {write:.1f} s)")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
