"""The runner's smaller guards: secrets, pacing, timestamps, missing files, bugs versus bad input."""

import json
import signal
import subprocess
import sys
import time

import pytest

import streamrnn
from connectors import ListSink
from connectors.files import JsonlSource
from connectors.kafka_settings import client_options_from_env, options_for, parse_option, read_client_config
from streamrnn import checkpoint
from streamrnn.runner import Runner

from test_adversarial import cli, one_line_error


def test_kafka_config_file_reads_properties_and_errors_never_echo_a_value(tmp_path):
    conf = tmp_path / "client.properties"
    conf.write_text("# credentials\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=me\n"
                    "sasl.password=hunter2=x\n! another comment\nrequest.timeout.ms=5000\n")
    assert read_client_config(conf) == {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                                        "sasl_plain_username": "me", "sasl_plain_password": "hunter2=x",
                                        "request_timeout_ms": 5000}
    for text in ("sasl_plain_passwordhunter2", "request_timeout_ms=hunter2"):
        with pytest.raises(ValueError) as e:
            parse_option(text)
        assert "hunter2" not in str(e.value)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_streamrnns_own_variables_are_not_taken_for_client_settings():
    """STREAMRNN_KAFKA_CLIENT (the client library), _HOME (the broker's jars) and
    _BOOTSTRAP_SERVERS share the prefix of the client settings, and a client setting no client
    knows is an error: they must not reach the clients."""
    env = {"STREAMRNN_KAFKA_CLIENT": "confluent", "STREAMRNN_KAFKA_HOME": "/opt/kafka",
           "STREAMRNN_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "STREAMRNN_KAFKA_SECURITY_PROTOCOL": "SSL"}
    options = client_options_from_env(env)
    assert options == {"security_protocol": "SSL"}
    from kafka import KafkaConsumer

    options_for(KafkaConsumer, options)  # raises on a setting no client knows


def test_absurd_timestamps_are_dead_lettered_and_the_rest_predicted(tmp_path):
    rows = [{"ts": t, "y": 1.0, "x": 2.0} for t in (1e9, 1e300, "nan", "2024-01-01T00:00:00", "garbage", 1e9 + 1)]
    sink, dead = ListSink(), ListSink()
    stats = Runner(JsonlSource(_jsonl(tmp_path / "t.jsonl", rows), "ts", speed=1000.0), sink,
                   streamrnn.RecurrentRegressor(hidden_size=4), task="regress", target="y", timestamp_field="ts",
                   dead_letter=dead).run(handle_signals=False)
    assert (stats.predictions_out, stats.dead_lettered) == (3, 3)
    assert all(b"timestamp" in dict(d["headers"])["streamrnn.error"] for d in dead.records)


def test_sigterm_ends_a_paced_replay_in_the_middle_of_a_long_gap(tmp_path):
    """A year-3000 timestamp after one of today used to sleep for centuries, deaf to SIGTERM."""
    path = _jsonl(tmp_path / "gap.jsonl", [{"ts": "2024-01-01T00:00:00", "y": 1.0}, {"ts": "3000-01-01T00:00:00", "y": 2.0}])
    proc = subprocess.Popen([sys.executable, "-m", "streamrnn.cli", "run", "--source", f"file:{path}", "--sink",
                             "null:", "--task", "regress", "--target", "y", "--timestamp", "ts", "--speed", "1",
                             "--hidden-size", "4", "--quiet", "--checkpoint", str(tmp_path / "c.ckpt"),
                             "--checkpoint-every", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (tmp_path / "c.ckpt").exists() and time.monotonic() < deadline:  # the first event is done
        time.sleep(0.1)
    time.sleep(1)  # into the gap
    assert proc.poll() is None
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 5 and proc.returncode == 0, err
    assert "events in: 1" in err


def test_a_missing_source_file_is_an_error_not_text(tmp_path):
    out = cli("run", "--source", f"file:{tmp_path}/nonexistent.txt", "--sink", "null:", "--task", "classify",
              "--target", "next")
    assert "no such file" in one_line_error(out)


def test_a_bug_stops_the_run_and_is_not_dead_lettered(tmp_path):
    """Only bad input (DecodeError, BadInput) is dead-lettered: any other exception is a bug, which
    stops the run loudly, and no checkpoint claims the event it failed on."""
    class Buggy(JsonlSource):
        def decode(self, event):
            if event.offset == 4:
                raise IndexError("a bug")
            return super().decode(event)

    path = _jsonl(tmp_path / "s.jsonl", [{"y": float(i), "x": 1.0} for i in range(6)])
    ckpt = tmp_path / "c.ckpt"
    dead = ListSink()
    runner = Runner(Buggy(path), ListSink(), streamrnn.RecurrentRegressor(hidden_size=4), task="regress", target="y",
                    dead_letter=dead, checkpoint_path=ckpt, checkpoint_every=2)
    with pytest.raises(IndexError):
        runner.run(handle_signals=False)
    assert dead.records == [] and runner.stats.events_in == 4
    from streamrnn import persist

    assert list(checkpoint.load(ckpt).positions.values()) == [3]


def test_a_dead_letter_the_sink_refuses_whole_is_written_truncated_with_the_reason(tmp_path):
    class SmallSink(ListSink):  # like a topic whose size limit is below the message's
        def write_raw(self, value, key=None, headers=None):
            if len(value) > 100_000:
                raise RuntimeError("MessageSizeTooLarge")
            super().write_raw(value, key, headers)

    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"y": 1.0, "x": 1.0}\n{"y": 1.0, "x": "' + b"z" * 300_000 + b'"}\n')
    dead = SmallSink()
    stats = Runner(JsonlSource(path), ListSink(), streamrnn.RecurrentRegressor(hidden_size=4), task="regress",
                   target="y", dead_letter=dead, max_message_bytes=200_000).run(handle_signals=False)
    assert stats.balanced and stats.dead_lettered == 1 and len(dead.records) == 1
    headers = dict(dead.records[0]["headers"])
    assert b"oversized" in headers["streamrnn.error"] and b"300" in headers["streamrnn.truncated"]
    assert len(dead.records[0]["value"]) == 64 * 1024


def test_an_unreachable_broker_is_not_an_idle_stream():
    from connectors.kafka import GroupSource

    source = GroupSource()
    source._join(["t"], 0.0, None, None, "127.0.0.1:1")  # nothing listens on port 1
    source.assigned.add(("t", 0))
    time.sleep(0.01)
    assert not source._idle()
    source.bootstrap_servers = ""
    time.sleep(0.01)
    assert source._idle()
