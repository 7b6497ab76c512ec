"""End-to-end throughput and latency of `streamrnn run` through a real local Kafka broker.

1. Throughput: N events are produced to a topic first; one `streamrnn run` worker (LSTM hidden 32,
   update_every 4) consumes, predicts, learns and produces a prediction per event. Events/s =
   predictions / (time of the last prediction - time of the first), from the output records'
   timestamps, so start-up and the idle wait at the end do not count.
2. Latency: a producer offers events at a fixed rate (default 5,000/s) with its send time in a
   header; the worker copies headers to its predictions; a consumer of the prediction topic
   records arrival time - send time. Median and p99, after a warm-up. The load tools use
   librdkafka whatever client the worker uses, so that they are not the bottleneck.

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


CLIENT = []


def worker(bootstrap, src, out, group, *extra):
    cmd = [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{bootstrap}/{src}",
           "--sink", f"kafka://{bootstrap}/{out}", "--task", "regress", "--target", "temp", "--features", "load",
           "--group", group, "--quiet", "--checkpoint-every", "50000", *MODEL, *CLIENT, *extra]
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


def latency(bootstrap, rate, seconds, warmup=10.0):
    """Offered load from a librdkafka producer paced in 1 ms bursts; arrival times from a
    librdkafka consumer (the load tools are not what is measured: they must not be the bottleneck)."""
    from confluent_kafka import Consumer, Producer

    src, out = topic(bootstrap, f"lat-in-{uuid.uuid4().hex[:6]}"), f"lat-out-{uuid.uuid4().hex[:6]}"
    w = worker(bootstrap, src, out, f"lat-{uuid.uuid4().hex[:6]}", "--idle-timeout", "5",
               "--kafka-option", "linger_ms=2", "--kafka-option", "fetch_max_wait_ms=50")
    lat = []
    stop = threading.Event()
    ready = threading.Event()

    def consume():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-reader-{uuid.uuid4().hex[:6]}",
                      "auto.offset.reset": "latest", "fetch.wait.max.ms": 50, "enable.auto.commit": False,
                      "topic.metadata.refresh.interval.ms": 1000})
        while out not in c.list_topics(timeout=5).topics and not stop.is_set():
            time.sleep(0.2)  # the worker creates the topic with its first predictions
        c.subscribe([out], on_assign=lambda cons, parts: parts and ready.set())
        while not stop.is_set():
            batch = c.consume(1000, 0)  # what has arrived, without waiting to fill a batch
            if not batch:
                m = c.poll(0.05)
                batch = [m] if m is not None else []
            now = time.time_ns()
            for m in batch:
                if m.error() is None:
                    sent = int(dict(m.headers())["sent_ns"])
                    lat.append(((now - sent) / 1e6, sent))
        c.close()

    # the broker shares the two cores: one request per message (linger 0) would cost it more CPU
    # than everything else here. A fetch returns as soon as data arrives, so a long fetch wait
    # adds no latency; it only spares the broker empty polls.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})

    def send(t):
        producer.produce(src, event(t), headers=[("sent_ns", str(time.time_ns()).encode())])

    # prime: the worker joins the group and compiles, and the output topic appears
    for t in range(200):
        send(t)
    producer.flush()
    th = threading.Thread(target=consume, daemon=True)
    th.start()
    ready.wait(120)
    time.sleep(2)
    # the offered load runs warmup + seconds; only events sent after the warm-up count (a fresh
    # topic, group and JVM code paths take several seconds to reach their steady latency)
    start = time.perf_counter()
    keep_from = time.time_ns() + int(warmup * 1e9)
    t = 0
    while time.perf_counter() - start < warmup + seconds:
        due = int((time.perf_counter() - start) * rate)
        while t < due:
            send(t)
            t += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush()
    time.sleep(2)
    stop.set()
    th.join()
    w.wait()
    print(f"  ({len(lat)} predictions seen by the latency consumer, {t} offered)", file=sys.stderr)
    kept = sorted(l for l, sent in lat if sent >= keep_from)
    offered = t / (warmup + seconds)
    return offered, len(kept), statistics.median(kept), kept[int(0.99 * (len(kept) - 1))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kafka-client", default="kafka-python", choices=["kafka-python", "confluent"])
    args = ap.parse_args(argv)
    CLIENT[:] = ["--kafka-client", args.kafka_client]
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from connectors.local_broker import LocalBroker

        broker = LocalBroker(tempfile.mkdtemp(prefix="bench-kafka-")).start()
        bootstrap = broker.bootstrap
    try:
        eps, summary = throughput(bootstrap, args.events)
        print(f"[{args.kafka_client}] throughput: {eps:,.0f} events/s per worker (consume + predict + learn + produce, "
              f"LSTM-32, TBPTT(4,16), {args.events:,} events)")
        print("  worker: " + " | ".join(summary))
        offered, n, p50, p99 = latency(bootstrap, args.rate, args.seconds)
        print(f"[{args.kafka_client}] latency at {offered:,.0f} events/s offered: median {p50:.2f} ms, p99 {p99:.2f} ms "
              f"({n:,} events after warm-up)")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
