"""Per-key models over a consumer group: a worker killed with SIGKILL, and a broker restart."""

import ast
import collections
import json
import math
import re
import signal
import subprocess
import sys
import time

import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

import streamrnn
from connectors.changelog import ChangelogStore, ConfluentChangelogStore
from streamrnn import persist
from streamrnn.state import KeyedModels, restore_partition, write_partition

from kafka_util import consume_all, create_topic, produce, unique
from test_runner_files import same_state

N_KEYS = 1000
N_PARTITIONS = 8
CHECKPOINT_EVERY = 2000


def template():
    return streamrnn.RecurrentForecaster(hidden_size=8, seed=3)


def make_events(n, n_keys, seed=0):
    rng = np.random.default_rng(seed)
    counts = collections.Counter()
    events = []
    for _ in range(n):
        k = f"k{rng.integers(n_keys)}"
        t = counts[k]
        counts[k] += 1
        phase = int(k[1:]) % 7
        events.append((k, {"key": k, "v": round(math.sin(t / 5 + phase) + 0.1 * rng.normal(), 6)}))
    return events


def produce_events(bootstrap, topic, events):
    # the message key picks the partition: a key's events stay in order in one partition
    produce(bootstrap, topic, [json.dumps(e).encode() for _, e in events], keys=[k.encode() for k, _ in events])


def worker_cmd(bootstrap, src, out, group, idle=25):
    return [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{bootstrap}/{src}",
            "--sink", f"kafka://{bootstrap}/{out}", "--task", "forecast", "--target", "v", "--key", "key",
            "--group", group, "--idle-timeout", str(idle), "--checkpoint-every", str(CHECKPOINT_EVERY),
            "--checkpoint-interval", "5", "--hidden-size", "8", "--seed", "3", "--quiet",
            "--kafka-option", "session_timeout_ms=6000", "--kafka-option", "heartbeat_interval_ms=1000"]


def _logs(files):
    out = []
    for f in files:
        f.flush()
        f.seek(0)
        out.append("\n".join(line for line in f.read().splitlines() if "kafka." not in line)[-3000:])
    return "\n----\n".join(out)


def committed_total(bootstrap, group, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:  # the group has no coordinator yet
        return 0
    finally:
        admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)


def final_models(bootstrap, changelog, src):
    store = ChangelogStore(bootstrap, changelog)
    models = {}
    try:
        for p in range(N_PARTITIONS):
            state = restore_partition(store, src, p)
            assert not state.rejected
            models.update({k: persist.loads(b) for k, b in state.models.items()})
    finally:
        store.close()
    return models


def reference_models(events):
    models = {}
    for k, e in events:
        m = models.get(k)
        if m is None:
            m = models[k] = template()
        m.forecast(1)
        m.learn_one(e["v"])
    return models


def test_sigkill_one_of_two_workers(kafka_bootstrap, tmp_path):
    n = 100_000
    events = make_events(n, N_KEYS)
    src = create_topic(kafka_bootstrap, unique("sensors"), N_PARTITIONS)
    out, group = unique("forecasts"), unique("grp")
    produce_events(kafka_bootstrap, src, events)
    logs = [open(tmp_path / f"w{i}.log", "w+") for i in range(2)]
    workers = [subprocess.Popen(worker_cmd(kafka_bootstrap, src, out, group), stderr=logs[i]) for i in range(2)]
    try:
        deadline = time.monotonic() + 300
        while committed_total(kafka_bootstrap, group, src) < n // 3 and time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), _logs(logs)
            time.sleep(0.2)
        assert workers[0].poll() is None and workers[1].poll() is None, "both workers must be busy at the kill"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        assert workers[1].wait(timeout=600) == 0
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    logs[1].seek(0)
    report = logs[1].read()
    preds = consume_all(kafka_bootstrap, out, idle_ms=5000)
    seen = collections.Counter(json.loads(m.value)["source"] for m in preds)
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    tps = [TopicPartition(src, p) for p in range(N_PARTITIONS)]
    ends = consumer.end_offsets(tps)
    consumer.close()
    expected = {f"{src}/{tp.partition}/{o}" for tp in tps for o in range(ends[tp])}
    assert len(expected) == n
    assert expected == set(seen), "every input event has a prediction"
    duplicates = sum(c - 1 for c in seen.values())
    # the killed worker's work after its last checkpoint is done again, and no more
    assert duplicates <= CHECKPOINT_EVERY + 1, (duplicates, report)
    # a failover happened. The survivor restores each partition once, on its first event there,
    # and keeps its own through the rebalance: its own partitions were restored at marker -1
    # (before any state existed), the killed worker's from that worker's checkpoints (marker >= 0).
    # A killed worker that held nothing would leave only -1; a survivor that restored nothing, none.
    found = re.search(r"restored at markers (\{.*?\})", report)
    assert found, report
    markers = ast.literal_eval(found.group(1))
    assert min(markers.values()) == -1 and max(markers.values()) >= 0, report
    print(f"duplicates after SIGKILL: {duplicates} (bound {CHECKPOINT_EVERY}); survivor: {report}")

    got = final_models(kafka_bootstrap, f"{group}-models-changelog", src)
    want = reference_models(events)
    assert set(got) == set(want) and len(got) == N_KEYS
    for k in want:
        assert same_state(got[k], want[k]), k


def test_broker_restart_mid_stream(fresh_broker, tmp_path):
    bootstrap = fresh_broker.bootstrap
    events = make_events(30_000, 50, seed=1)
    src = create_topic(bootstrap, unique("sensors"), 2)
    out, group = unique("forecasts"), unique("grp")
    produce_events(bootstrap, src, events[:20_000])
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen(worker_cmd(bootstrap, src, out, group, idle=40), stderr=log)
    try:
        deadline = time.monotonic() + 300
        while committed_total(bootstrap, group, src) < 4000 and time.monotonic() < deadline:
            assert worker.poll() is None, _logs([log])
            time.sleep(0.2)
        fresh_broker.stop()
        time.sleep(3)
        fresh_broker.start()
        produce_events(bootstrap, src, events[20_000:])
        code = worker.wait(timeout=600)
    finally:
        if worker.poll() is None:
            worker.kill()
    log.seek(0)
    assert code == 0, log.read()
    preds = consume_all(bootstrap, out, idle_ms=5000)
    seen = {json.loads(m.value)["source"] for m in preds}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    tps = [TopicPartition(src, p) for p in range(2)]
    ends = consumer.end_offsets(tps)
    consumer.close()
    expected = {f"{src}/{tp.partition}/{o}" for tp in tps for o in range(ends[tp])}
    assert sum(ends.values()) == 30_000
    assert expected <= seen, "no event lost across the broker restart"


def test_keyed_models_evict_and_revive():
    models = KeyedModels(template(), max_hot=3)
    for i in range(10):
        m = models.get(f"k{i % 5}")
        m.learn_one(float(i))
        models.touch(f"k{i % 5}")
    assert len(models.hot) == 3 and len(models) == 5 and models.evicted > 0
    blobs = models.take_dirty()
    assert set(blobs) == {f"k{i}" for i in range(5)}
    again = KeyedModels(template(), blobs)
    for k in blobs:
        assert same_state(again.get(k), models.model(k))


def _learned(n):
    m = template()
    for i in range(n):
        m.learn_one(float(i))
    return m


def test_changelog_stores_round_trip_on_both_clients(kafka_bootstrap):
    blobs = {f"k{i}": persist.dumps(_learned(i % 4), key=f"k{i}") for i in range(50)}
    newer = persist.dumps(_learned(9), key="k3")
    for cls in (ChangelogStore, ConfluentChangelogStore):
        store = cls(kafka_bootstrap, unique("changelog"))
        store.ensure_topic(3)
        write_partition(store, "in", 2, blobs, 41)
        write_partition(store, "in", 2, {"k3": newer}, 97)
        write_partition(store, "other", 2, {"k3": blobs["k1"]}, 5)
        store.flush()
        state = restore_partition(store, "in", 2)
        assert state.marker == 97 and state.models == {**blobs, "k3": newer} and not state.rejected
        # the record saved for k1 under k3 is refused
        assert restore_partition(store, "other", 2).models == {} and restore_partition(store, "other", 2).rejected
        empty = restore_partition(store, "in", 1)
        assert (empty.models, empty.marker) == ({}, -1)
        store.close()


def test_models_of_a_checkpoint_without_its_marker_are_ignored():
    """A worker killed in the middle of a checkpoint wrote some models but not the marker: they
    would have its events learned twice when the next owner replays from the older marker."""
    from streamrnn.state import _Versions, _changelog_records

    a10, a20, b20 = (persist.dumps(_learned(n), key=k) for n, k in ((1, "a"), (2, "a"), (2, "b")))
    v = _Versions("t")
    for key, value in _changelog_records("t", {"a": a10}, 10):
        v.add_record(key, value)
    cut_short = list(_changelog_records("t", {"a": a20, "b": b20}, 20))
    for key, value in cut_short[:-1]:  # checkpoint 20 cut short: no marker
        v.add_record(key, value)
    assert v.marker == 10 and v.models == {"a": a10}
    v.add_record(*cut_short[-1])
    assert v.marker == 20 and v.models == {"a": a20, "b": b20} and not v.rejected
