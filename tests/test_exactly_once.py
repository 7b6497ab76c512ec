"""`--guarantee exactly-once` on a real broker: a worker SIGKILLed mid-stream, then restarted,
leaves read_committed consumers exactly one prediction per input offset, equal to an uninterrupted
run's; what the killed worker had sent in its open transaction is in the topic but never visible."""

import json
import signal
import subprocess
import time

import pytest
from kafka import KafkaConsumer

from kafka_util import create_topic, produce, unique
from test_kafka_runner import as_json_lines, run_args, streamrnn_cmd
from test_runner_files import write_csv


def read(bootstrap, topic, isolation, idle_ms=4000):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=idle_ms, isolation_level=isolation)
    out = [json.loads(m.value) for m in consumer]
    consumer.close()
    return out


def by_source(preds):
    """(partition, offset) -> prediction; fails on a duplicate."""
    out = {}
    for p in preds:
        _, partition, offset = p["source"].rsplit("/", 2)
        key = (int(partition), int(offset))
        assert key not in out, f"two predictions for offset {key}"
        out[key] = p["prediction"]
    return out


@pytest.mark.parametrize("client,keyed", [("kafka-python", False), ("confluent", True)])
def test_sigkill_mid_stream_leaves_one_prediction_per_offset(kafka_bootstrap, tmp_path, client, keyed):
    n, first_part = 20_000, 7_300
    path = write_csv(tmp_path / "stream.csv", n=n)
    messages, keys = as_json_lines(path), [b"k%d" % (i % 5) for i in range(n)]
    # per-key models see their own events in order, whatever the interleaving of partitions, so a
    # keyed job can spread over two; one model over a stream needs one partition to be repeatable
    src = create_topic(kafka_bootstrap, unique("in"), 2 if keyed else 1)

    def job(out, group, state):
        extra = ["--guarantee", "exactly-once", "--idle-timeout", "6", "--checkpoint-every", "2000",
                 "--checkpoint-interval", "5", "--kafka-client", client]
        if keyed:
            # a stable transactional.id: the restarted worker aborts its predecessor's transaction at once
            extra += ["--key", "@key", "--kafka-option", f"transactional.id={group}-worker-0"]
        else:
            extra += ["--checkpoint", str(state)]  # and the default, a fresh id: the broker's timeout aborts it
        return streamrnn_cmd(*run_args(kafka_bootstrap, src, out, group, *extra))

    # the first part of the stream, and a worker killed while its last transaction is open: the
    # stream pauses after a number of events that is no multiple of --checkpoint-every, so the
    # worker idles with the rest of the part sent in a transaction it commits only after 5 s
    produce(kafka_bootstrap, src, messages[:first_part], keys=keys[:first_part])
    out, group = unique("pred"), unique("g")
    first = subprocess.Popen(job(out, group, tmp_path / "w.ckpt"), stderr=subprocess.DEVNULL)
    watches = {iso: KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest",
                                  isolation_level=iso) for iso in ("read_uncommitted", "read_committed")}
    for w in watches.values():
        w.subscribe([out])
    seen = dict.fromkeys(watches, 0)
    deadline = time.monotonic() + 300
    while seen["read_uncommitted"] < first_part:
        assert time.monotonic() < deadline and first.poll() is None, "the worker did not get through the first part"
        for iso, w in watches.items():
            seen[iso] += sum(len(records) for records in w.poll(timeout_ms=20).values())
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    for iso, w in watches.items():
        seen[iso] += sum(len(records) for records in w.poll(timeout_ms=1000).values())
        w.close()
    assert 0 < seen["read_committed"] < first_part, seen

    produce(kafka_bootstrap, src, messages[first_part:], keys=keys[first_part:])
    second = subprocess.run(job(out, group, tmp_path / "w.ckpt"), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "exactly-once:" in second.stderr

    reference_out = unique("ref")  # the same job over the whole stream, never interrupted
    ref = subprocess.run(job(reference_out, unique("g"), tmp_path / "ref.ckpt"), capture_output=True, text=True,
                         timeout=600)
    assert ref.returncode == 0, ref.stderr
    reference = by_source(read(kafka_bootstrap, reference_out, "read_committed"))
    assert len(reference) == n

    committed = by_source(read(kafka_bootstrap, out, "read_committed"))  # fails on a duplicate
    assert sorted(committed) == sorted(reference), "one prediction per input offset"
    assert committed == reference, "the restarted worker resumed from exactly the committed state"
    everything = read(kafka_bootstrap, out, "read_uncommitted")
    assert len(everything) == n + first_part - seen["read_committed"], \
        "what the killed worker had sent in its open transaction is in the topic, aborted, never read"


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_pending_checkpoint_is_kept_only_if_its_transaction_committed(kafka_bootstrap, tmp_path, client):
    # a worker writes PATH.pending, commits its transaction, then renames the file; killed between
    # the two, the group's committed offsets tell whether the pending state is the committed one
    import streamrnn
    from connectors import ListSink
    from connectors.uri import open_source
    from kafka.structs import OffsetAndMetadata, TopicPartition

    from streamrnn.runner import Runner

    if client == "confluent":
        from connectors.kafka_confluent import ConfluentTransaction as Transaction
    else:
        from connectors.kafka import KafkaTransaction as Transaction

    topic, group = create_topic(kafka_bootstrap, unique("in")), unique("g")
    produce(kafka_bootstrap, topic, [b'{"y": 1.0}'] * 10)
    committer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(6, "", -1)})  # offsets 0..5 are done
    committer.close()

    def runner(checkpoint, transaction=None):
        source = open_source(f"kafka://{kafka_bootstrap}/{topic}", group_id=group, kafka_client_name=client,
                             read_committed=True)
        return Runner(source, ListSink(), streamrnn.RecurrentRegressor(hidden_size=4), task="regress", target="y",
                      checkpoint_path=str(checkpoint), transaction=transaction)

    def write(path, last_offset):
        r = runner(tmp_path / "unused.ckpt")
        r.positions = {(topic, 0): last_offset}
        r._write_checkpoint(str(path))
        r.source.close()

    ckpt = tmp_path / "w.ckpt"
    transaction = Transaction(kafka_bootstrap, unique("tid"))
    try:
        for pending_last, kept in ((5, True), (8, False)):
            write(ckpt, 2)
            write(f"{ckpt}.pending", pending_last)
            r = runner(ckpt, transaction)
            r.source.close()
            assert not (tmp_path / "w.ckpt.pending").exists()
            assert r.positions == {(topic, 0): pending_last if kept else 2}
    finally:
        transaction.close()


@pytest.mark.parametrize("extra,expected", [
    (["--source", "file:{csv}", "--sink", "kafka://127.0.0.1:1/out"], "needs a Kafka source"),
    (["--source", "kafka://127.0.0.1:1/in", "--sink", "file:{dir}/out.jsonl"], "--sink is not one"),
    (["--source", "kafka://127.0.0.1:1/in", "--sink", "kafka://127.0.0.1:1/out", "--dead-letter", "-"],
     "--dead-letter is not one"),
    (["--source", "kafka://127.0.0.1:1/in", "--sink", "kafka://127.0.0.2:1/out"], "on the source's cluster"),
    (["--source", "kafka://127.0.0.1:1/in", "--sink", "kafka://127.0.0.1:1/out", "--key", "k", "--state", "dir:x"],
     "use --state kafka"),
    (["--source", "kafka://127.0.0.1:1/in", "--sink", "kafka://127.0.0.1:1/out", "--checkpoint-interval", "6"],
     "over half of transaction.timeout.ms"),
])
def test_jobs_that_cannot_be_exactly_once_are_refused_in_one_line(tmp_path, extra, expected):
    from test_adversarial import cli, one_line_error

    csv = write_csv(tmp_path / "s.csv", n=5)
    extra = [a.format(csv=csv, dir=tmp_path) for a in extra]
    line = one_line_error(cli("run", "--task", "regress", "--target", "temp", "--guarantee", "exactly-once", *extra))
    assert expected in line and line.startswith("streamrnn: error:")


def test_dead_letters_commit_in_the_transaction_and_a_too_large_one_is_truncated(kafka_bootstrap, tmp_path):
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    src, out, dlq = unique("in"), unique("pred"), unique("dlq")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(src, 1, 1, topic_configs={"max.message.bytes": str(4 << 20)})])
    admin.close()
    good = [b'{"ts": "2024-01-01T00:00:00", "temp": %d.5, "load": %d, "kind": "a"}' % (i, i % 3) for i in range(300)]
    stream = good[:100] + [b"{oops"] + good[100:200] + [b"{" + b"x" * 1_500_000] + good[200:]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=4 << 20)
    for m in stream:
        producer.send(src, m)
    producer.flush()
    producer.close()
    proc = subprocess.run(streamrnn_cmd(*run_args(
        kafka_bootstrap, src, out, unique("g"), "--guarantee", "exactly-once", "--idle-timeout", "4",
        "--dead-letter", f"kafka://{kafka_bootstrap}/{dlq}", "--max-message-bytes", "2000000")),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "events in: 302  predictions out: 300  dead-lettered: 2" in proc.stderr
    assert "1 dead letters were too large for the dead-letter sink" in proc.stderr
    consumer = KafkaConsumer(dlq, bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest",
                             consumer_timeout_ms=4000, isolation_level="read_committed")
    letters = {int(dict(m.headers)["streamrnn.source"].decode().rsplit("/", 1)[1]): m for m in consumer}
    consumer.close()
    assert sorted(letters) == [100, 201]
    assert letters[100].value == b"{oops"
    assert letters[201].value == stream[201][:64 * 1024] and "streamrnn.truncated" in dict(letters[201].headers)
    assert len(read(kafka_bootstrap, out, "read_committed")) == 300
