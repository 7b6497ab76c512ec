"""``--task anomaly``: the runner scores every event with the detector, writes the score and whether
it is an alert, sends the alerts to their own sink, resumes from a checkpoint, keeps one detector
per key, and refuses settings that do not belong to the task."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import streamrnn
from connectors import ListSink
from connectors.files import CsvSource
from streamrnn.detector import DEFAULT_THRESHOLD
from streamrnn.keyed import KeyedRunner
from streamrnn.runner import Runner
from streamrnn.state import DirectoryStore

SPIKES = (900, 1300)


def _csv(path, n=1500, bad=()):
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write("ts,host,latency\n")
        for t in range(n):
            host = "ab"[t % 2]
            v = 10 + 3 * math.sin(2 * math.pi * (t // 2) / 48) + (0 if host == "a" else 5) + 0.3 * rng.normal()
            if t in SPIKES:
                v += 6
            f.write(f"{1_700_000_000 + 300 * t},{host},{'oops' if t in bad else f'{v:.4f}'}\n")
    return path


def _detector():
    return streamrnn.RecurrentAnomalyDetector(hidden_size=8, seed=0)


def _direct_scores(path, key=None):
    """The scores of detectors fed the file's events directly (one per host with ``key``)."""
    detectors, out = {}, []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for x in rows:
        d = detectors.setdefault(x["host"] if key else None, _detector())
        event = {"latency": float(x["latency"])}
        out.append(d.score_one(event))
        d.learn_one(event)
    return out


def _runner(path, sink, **kw):
    return Runner(CsvSource(path), sink, _detector(), task="anomaly", target=None, features=["latency"], **kw)


def test_every_event_gets_a_score_and_the_alerts_their_own_sink(tmp_path):
    path = _csv(tmp_path / "m.csv")
    sink, alerts = ListSink(), ListSink()
    stats = _runner(path, sink, alerts=alerts).run(handle_signals=False)
    assert stats.events_in == 1500 and stats.balanced
    scores = [r["score"] for r in sink.records]
    assert scores == pytest.approx(_direct_scores(path), abs=0)
    assert [r for r in sink.records if r["alert"]] == alerts.records
    assert all((r["score"] >= DEFAULT_THRESHOLD) == r["alert"] for r in sink.records)
    alerted = {int(r["source"].rsplit("/", 1)[1]) for r in alerts.records}
    assert set(SPIKES) <= alerted and len(alerted) < 10


def test_a_resumed_run_scores_as_an_uninterrupted_one(tmp_path):
    path = _csv(tmp_path / "m.csv")
    full = ListSink()
    _runner(path, full).run(handle_signals=False)
    first, second, ckpt = ListSink(), ListSink(), tmp_path / "d.ckpt"
    _runner(path, first, checkpoint_path=ckpt, checkpoint_every=100).run(max_events=650, handle_signals=False)
    _runner(path, second, checkpoint_path=ckpt, checkpoint_every=100).run(handle_signals=False)
    assert [r["score"] for r in first.records + second.records] == [r["score"] for r in full.records]


def test_one_detector_per_key_and_bad_records_dead_lettered(tmp_path):
    path = _csv(tmp_path / "m.csv", bad=(100, 101))
    sink, dead = ListSink(), ListSink()
    runner = KeyedRunner(CsvSource(path), sink, _detector(), task="anomaly", target=None, features=["latency"],
                         key_field="host", store=DirectoryStore(tmp_path / "state"), dead_letter=dead)
    stats = runner.run(handle_signals=False)
    assert stats.events_in == 1500 and stats.dead_lettered == 2 and stats.balanced
    assert all(b"latency" in dict(r["headers"])["streamrnn.error"] for r in dead.records)
    # the bad records are the spikes' neighbours' business no more: each key's detector scores as
    # one fed only that key's good events
    with open(path, newline="") as f:
        good = [r for r in csv.DictReader(f) if r["latency"] != "oops"]
    clean = tmp_path / "clean.csv"
    with open(clean, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["ts", "host", "latency"])
        w.writeheader()
        w.writerows(good)
    assert [r["score"] for r in sink.records] == _direct_scores(clean, key=True)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "streamrnn.cli", "run", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("extra,message", [
    (["--task", "anomaly", "--target", "latency"], "leave out --target"),
    (["--task", "regress"], "needs --target"),
    (["--task", "regress", "--target", "latency", "--alerts", "null:"], "are for --task anomaly"),
    (["--task", "anomaly", "--threshold", "1.5"], "--threshold must be in (0, 1]"),
    (["--task", "anomaly", "--metric", "MAE"], "leave out --metric"),
    (["--task", "anomaly", "--num-layers", "2"], "--num-layers: not a setting"),
])
def test_settings_that_do_not_belong_to_the_task_are_one_line(tmp_path, extra, message):
    path = _csv(tmp_path / "m.csv", n=20)
    result = _cli("--source", f"file:{path}", "--sink", "null:", "--quiet", *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_command_line_writes_scores_and_alerts(tmp_path):
    path = _csv(tmp_path / "m.csv")
    out, alerts = tmp_path / "scores.jsonl", tmp_path / "alerts.jsonl"
    result = _cli("--source", f"file:{path}", "--sink", f"file:{out}", "--task", "anomaly", "--features", "latency",
                  "--key", "host", "--state", f"dir:{tmp_path / 'state'}", "--alerts", f"file:{alerts}",
                  "--timestamp", "ts", "--quiet")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    alerted = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert len(records) == 1500 and alerted == [r for r in records if r["alert"]]
    assert f"alerts: {len(alerted):,} events scored 0.25 or more" in result.stderr


def test_alerts_to_a_kafka_topic_commit_with_the_scores_under_exactly_once(kafka_bootstrap, tmp_path):
    from kafka_util import consume_all, create_topic, produce, records, unique

    path = _csv(tmp_path / "m.csv", n=1400)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    src = create_topic(kafka_bootstrap, unique("in"))
    produce(kafka_bootstrap, src, [json.dumps({**r, "latency": float(r["latency"])}).encode() for r in rows])
    scores, alerts = unique("scores"), unique("alerts")
    result = subprocess.run([sys.executable, "-m", "streamrnn.cli", "run", "--source", f"kafka://{kafka_bootstrap}/{src}",
                             "--sink", f"kafka://{kafka_bootstrap}/{scores}", "--alerts",
                             f"kafka://{kafka_bootstrap}/{alerts}", "--task", "anomaly", "--features", "latency",
                             "--group", unique("g"), "--idle-timeout", "8", "--guarantee", "exactly-once", "--quiet"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    scored = records(consume_all(kafka_bootstrap, scores))
    alerted = records(consume_all(kafka_bootstrap, alerts))
    assert len(scored) == 1400
    assert alerted == [r for r in scored if r["alert"]] and 900 in {int(r["source"].rsplit("/", 1)[1]) for r in alerted}


def test_the_metrics_exporter_counts_the_alerts(tmp_path):
    from streamrnn.exporter import RunCollector

    runner = _runner(_csv(tmp_path / "m.csv"), ListSink())
    runner.run(handle_signals=False)
    samples = {s.name: s.value for family in RunCollector(runner).collect() for s in family.samples}
    assert runner.alerts_out >= 2 and samples["streamrnn_alerts_total"] == runner.alerts_out
    assert samples["streamrnn_predictions_total"] == 1500 and samples["streamrnn_skipped_updates"] == 0
