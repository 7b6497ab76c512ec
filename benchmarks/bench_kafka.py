"""End-to-end throughput and latency of `streamrnn run` through a real local Kafka broker.

1. Throughput: N events are produced to a topic first; one `streamrnn run` worker (LSTM hidden 32,
   update_every 4) consumes, predicts, learns and produces a prediction per event. Events/s =
   predictions / (time of the last prediction - time of the first), from the output records'
   timestamps, so start-up and the idle wait at the end do not count.
2. Latency: a producer offers events at a fixed rate (default 5,000/s) with its send time in a
   header; the worker copies headers to its predictions; a consumer of the prediction topic
   records arrival time - send time. Median and p99, after a warm-up.

The broker, the worker and the load generator share this 2-core machine.

    python benchmarks/bench_kafka.py [--events 200000] [--rate 5000] [--seconds 20]
    python benchmarks/bench_kafka.py --bootstrap HOST:PORT    # an existing broker
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
import threading
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODEL = ["--cell", "lstm", "--hidden-size", "32", "--update-every", "4", "--seed", "0"]


def topic(bootstrap, name, partitions=1):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, partitions, 1)])
    admin.close()
    return name


def event(t):
    v = math.sin(t / 20.0) + 0.3 * math.sin(t / 7.0)
    return json.dumps({"t": t, "load": round(v, 6), "temp": round(2 * v + 0.1 * math.cos(t), 6)}).encode()


def worker(bootstrap, src, out, group, *extra):
    cmd = [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{bootstrap}/{src}",
           "--sink", f"kafka://{bootstrap}/{out}", "--task", "regress", "--target", "temp", "--features", "load",
           "--group", group, "--quiet", "--checkpoint-every", "50000", *MODEL, *extra]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def throughput(bootstrap, n):
    src, out = topic(bootstrap, f"tp-in-{uuid.uuid4().hex[:6]}"), f"tp-out-{uuid.uuid4().hex[:6]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for t in range(n):
        producer.send(src, event(t))
    producer.flush()
    producer.close()
    w = worker(bootstrap, src, out, f"tp-{uuid.uuid4().hex[:6]}", "--idle-timeout", "5")
    _, err = w.communicate()
    consumer = KafkaConsumer(out, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000, group_id=None)
    stamps = [m.timestamp for m in consumer]
    consumer.close()
    assert len(stamps) == n, (len(stamps), err[-2000:])
    seconds = (max(stamps) - min(stamps)) / 1000.0
    return n / seconds, err.strip().splitlines()[-2:]


def latency(bootstrap, rate, seconds, warmup=3.0):
    src, out = topic(bootstrap, f"lat-in-{uuid.uuid4().hex[:6]}"), f"lat-out-{uuid.uuid4().hex[:6]}"
    w = worker(bootstrap, src, out, f"lat-{uuid.uuid4().hex[:6]}", "--idle-timeout", "5",
               "--kafka-option", "linger_ms=0", "--kafka-option", "fetch_max_wait_ms=5")
    lat = []
    stop = threading.Event()
    ready = threading.Event()

    def consume():
        c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=5, auto_offset_reset="latest")
        while not c.partitions_for_topic(out) and not stop.is_set():
            c.poll(timeout_ms=100)
            time.sleep(0.1)
        c.subscribe([out])
        c.poll(timeout_ms=1000)
        ready.set()
        while not stop.is_set():
            for records in c.poll(timeout_ms=50).values():
                now = time.time_ns()
                for r in records:
                    sent = int(dict(r.headers)["sent_ns"])
                    lat.append(((now - sent) / 1e6, sent))
        c.close()

    # prime: the worker joins the group and compiles; the output topic appears with the first predictions
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for t in range(200):
        producer.send(src, event(t), headers=[("sent_ns", str(time.time_ns()).encode())])
    producer.flush()
    th = threading.Thread(target=consume, daemon=True)
    th.start()
    ready.wait(120)
    start = time.perf_counter()
    t = 0
    while time.perf_counter() - start < seconds:
        due = start + t / rate
        while time.perf_counter() < due:
            pass
        producer.send(src, event(t), headers=[("sent_ns", str(time.time_ns()).encode())])
        t += 1
    producer.flush()
    time.sleep(2)
    stop.set()
    th.join()
    producer.close()
    w.wait()
    cutoff = time.time_ns() - int((seconds + 2 - warmup) * 1e9)
    kept = sorted(l for l, sent in lat if sent >= cutoff)
    offered = t / seconds
    return offered, len(kept), statistics.median(kept), kept[int(0.99 * (len(kept) - 1))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args(argv)
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from connectors.local_broker import LocalBroker

        broker = LocalBroker(tempfile.mkdtemp(prefix="bench-kafka-")).start()
        bootstrap = broker.bootstrap
    try:
        eps, summary = throughput(bootstrap, args.events)
        print(f"throughput: {eps:,.0f} events/s per worker (consume + predict + learn + produce, "
              f"LSTM-32, TBPTT(4,16), {args.events:,} events)")
        print("  worker: " + " | ".join(summary))
        offered, n, p50, p99 = latency(bootstrap, args.rate, args.seconds)
        print(f"latency at {offered:,.0f} events/s offered: median {p50:.2f} ms, p99 {p99:.2f} ms "
              f"({n:,} events after warm-up)")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
