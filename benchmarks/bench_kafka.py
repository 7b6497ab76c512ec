"""End-to-end throughput and latency of `streamrnn run` through a real local Kafka broker.

1. Latency: a producer offers events at a fixed rate (default 5,000/s) with its send time in a
   header; the worker copies headers to its predictions. Both topics stamp records with the
   broker's append time, read back after the run: the worker's latency is prediction appended -
   event appended, end to end is prediction appended - event offered. Median and p99 after a
   warm-up (default 60 s) that also warms the broker's JVM, which spends its first minute
   compiling on the cores the worker needs. The load tools use librdkafka whatever client the
   worker uses, so that they are not the bottleneck.
2. Throughput: N events are produced to a topic first; one `streamrnn run` worker (LSTM hidden 32,
   update_every 4) consumes, predicts, learns and produces a prediction per event. Events/s =
   predictions / (time of the last prediction - time of the first), from the times the broker
   appended the output records, so start-up and the idle wait at the end do not count.
3. Guarantees: the throughput run at at-least-once and at exactly-once (``--guarantee
   exactly-once``: one Kafka transaction per checkpoint interval, the output read back
   read_committed), alternating, ``--rounds`` times each; medians and their ratio.

The broker, the worker and the load generator share this 2-core machine.

    python benchmarks/bench_kafka.py [--kafka-client confluent] [--events 200000] [--rate 5000] [--seconds 20] [--warmup 60]
    python benchmarks/bench_kafka.py --throughput-only --rounds 3 --events 100000   # the guarantees side by side
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
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODEL = ["--cell", "lstm", "--hidden-size", "32", "--update-every", "4", "--seed", "0"]


def topic(bootstrap, name, partitions=1, config=None):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    admin.close()
    return name


def event(t):
    v = math.sin(t / 20.0) + 0.3 * math.sin(t / 7.0)
    return json.dumps({"t": t, "load": round(v, 6), "temp": round(2 * v + 0.1 * math.cos(t), 6)}).encode()


CLIENT = []


def worker(bootstrap, src, out, group, *extra):
    cmd = [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{bootstrap}/{src}",
           "--sink", f"kafka://{bootstrap}/{out}", "--task", "regress", "--target", "temp", "--features", "load",
           "--group", group, "--quiet", "--checkpoint-every", "50000", *MODEL, *CLIENT, *extra]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def throughput(bootstrap, n, guarantee="at-least-once"):
    # the output stamped by the broker as it appends (a producer's own stamp is taken when a record is
    # queued, which leaves out what it still has to send when the run ends)
    src = topic(bootstrap, f"tp-in-{uuid.uuid4().hex[:6]}")
    out = topic(bootstrap, f"tp-out-{uuid.uuid4().hex[:6]}", config={"message.timestamp.type": "LogAppendTime"})
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for t in range(n):
        producer.send(src, event(t))
    producer.flush()
    producer.close()
    w = worker(bootstrap, src, out, f"tp-{uuid.uuid4().hex[:6]}", "--idle-timeout", "5", "--guarantee", guarantee)
    _, err = w.communicate()
    consumer = KafkaConsumer(out, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000, group_id=None, isolation_level="read_committed")
    stamps = [m.timestamp for m in consumer]
    consumer.close()
    assert len(stamps) == n, (len(stamps), err[-2000:])
    seconds = (max(stamps) - min(stamps)) / 1000.0
    return n / seconds, err.strip().splitlines()[-2:]


def latency(bootstrap, rate, seconds, warmup=10.0):
    """Offered load from a librdkafka producer paced in 1 ms bursts, through one worker.

    Both topics stamp records with the broker's append time (``LogAppendTime``), so the latency the
    worker adds is read from the broker's own clock: prediction appended - event appended (the
    worker's fetch, decode, predict, learn, encode, produce and the acknowledged append). End to end
    adds the load producer's send time (a header) to that: event offered - prediction appended.
    Timestamps are read back after the run, so the load tools poll the broker as little as a real
    producer would (on this 2-core machine every request the broker serves costs 0.25-0.5 ms of a
    core that the worker shares)."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    src, out = f"lat-in-{uuid.uuid4().hex[:6]}", f"lat-out-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name in (src, out):
        admin.create_topics([NewTopic(name, 1, 1, config={"message.timestamp.type": "LogAppendTime"})])[name].result()
    w = worker(bootstrap, src, out, f"lat-{uuid.uuid4().hex[:6]}", "--idle-timeout", "5",
               "--kafka-option", "linger_ms=1", "--kafka-option", "fetch_max_wait_ms=50")
    # a 5 ms linger: one request per five 1 ms bursts (the send time is taken before it, so the
    # linger counts in the end-to-end figure, not in the worker's)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

    def send(t):
        producer.produce(src, event(t), headers=[("sent_ns", str(time.time_ns()).encode())])

    # prime: the worker joins the group and compiles, and its first predictions appear
    for t in range(200):
        send(t)
    producer.flush()
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-probe-{uuid.uuid4().hex[:6]}",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
    probe.assign([TopicPartition(out, 0, 0)])
    deadline = time.monotonic() + 120
    while probe.poll(0.5) is None and time.monotonic() < deadline:
        pass
    probe.close()
    time.sleep(2)
    start = time.perf_counter()
    keep_from = time.time_ns() + int(warmup * 1e9)  # a fresh topic, group and JVM paths settle first
    t = 200
    while time.perf_counter() - start < warmup + seconds:
        due = 200 + int((time.perf_counter() - start) * rate)
        while t < due:
            send(t)
            t += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush()
    w.wait()

    def read_all(topic_name):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-read-{uuid.uuid4().hex[:6]}",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.assign([TopicPartition(topic_name, 0, 0)])
        records, idle = [], time.monotonic()
        while time.monotonic() - idle < 3:
            batch = c.consume(10000, 0.5)
            if batch:
                idle = time.monotonic()
                records += [m for m in batch if m.error() is None]
        c.close()
        return records

    appended = {m.offset(): m.timestamp()[1] for m in read_all(src)}
    worker_ms, end_ms = [], []
    for m in read_all(out):
        sent = int(dict(m.headers())["sent_ns"])
        if sent < keep_from:
            continue
        offset = int(json.loads(m.value())["source"].rsplit("/", 1)[1])
        worker_ms.append(m.timestamp()[1] - appended[offset])
        end_ms.append(m.timestamp()[1] - sent / 1e6)
    print(f"  ({len(appended):,} events offered, {len(worker_ms):,} predictions after the warm-up)", file=sys.stderr)

    def pct(v, q):
        v = sorted(v)
        return v[int(q * (len(v) - 1))]

    offered = (t - 200) / (warmup + seconds)
    return offered, len(worker_ms), (statistics.median(worker_ms), pct(worker_ms, 0.99)), \
        (statistics.median(end_ms), pct(end_ms, 0.99))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kafka-client", default="kafka-python", choices=["kafka-python", "confluent"])
    ap.add_argument("--warmup", type=float, default=60, help="seconds of offered load before latency counts")
    ap.add_argument("--latency-only", action="store_true")
    ap.add_argument("--throughput-only", action="store_true", help="skip the latency run")
    ap.add_argument("--rounds", type=int, default=1, help="throughput runs per guarantee, alternating")
    args = ap.parse_args(argv)
    CLIENT[:] = ["--kafka-client", args.kafka_client]
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from connectors.local_broker import LocalBroker

        broker = LocalBroker(tempfile.mkdtemp(prefix="bench-kafka-")).start()
        bootstrap = broker.bootstrap
    try:
        # latency first: its warm-up also warms the broker. A fresh broker's JVM spends a minute
        # compiling its hot paths, on the cores the worker needs (measured here: p99 120-150 ms
        # after a 10 s warm-up, 5 ms after 60 s), and a production broker is long past that.
        if not args.throughput_only:
            offered, n, (w50, w99), (e50, e99) = latency(bootstrap, args.rate, args.seconds, args.warmup)
            print(f"[{args.kafka_client}] latency at {offered:,.0f} events/s offered ({n:,} events after a "
                  f"{args.warmup:.0f} s warm-up), broker clock (ms resolution):\n  event appended -> prediction "
                  f"appended: median {w50:.1f} ms, p99 {w99:.1f} ms\n  event offered -> prediction appended (with "
                  f"the load producer's 5 ms linger): median {e50:.1f} ms, p99 {e99:.1f} ms", flush=True)
        if not args.latency_only:
            rates = {"at-least-once": [], "exactly-once": []}
            for _ in range(args.rounds):
                for guarantee in rates:
                    eps, summary = throughput(bootstrap, args.events, guarantee)
                    rates[guarantee].append(eps)
                    print(f"  {guarantee}: {eps:,.0f} events/s | " + " | ".join(summary), flush=True)
            medians = {g: statistics.median(v) for g, v in rates.items()}
            print(f"[{args.kafka_client}] throughput per worker (consume + predict + learn + produce, LSTM-32, "
                  f"TBPTT(4,16), {args.events:,} events, median of {args.rounds}):")
            for g, m in medians.items():
                print(f"  {g:14s} {m:10,.0f} events/s")
            print(f"  exactly-once / at-least-once: {medians['exactly-once'] / medians['at-least-once']:.3f}")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
