"""The keyed runner without Kafka: one model per key over file sources and a directory store."""

import base64
import json

import numpy as np

import streamrnn
from connectors import ListSink
from connectors.files import CsvSource, RecordingSource
from streamrnn.keyed import KeyedRunner
from streamrnn.runner import Runner
from streamrnn.state import DirectoryStore


def _csv(path, rows):
    with open(path, "w") as f:
        f.write("ts,load,kind,temp\n")
        for t, (load, kind, temp) in enumerate(rows):
            f.write(f"{t},{load:.6f},{kind},{temp:.6f}\n")
    return path


def _rows(n=240, seed=0):
    """Two series that behave differently, interleaved irregularly by kind."""
    rng = np.random.default_rng(seed)
    rows, t_of = [], {"a": 0, "b": 0}
    for _ in range(n):
        kind = "a" if rng.random() < 0.6 else "b"
        t = t_of[kind]
        t_of[kind] += 1
        load = np.sin(t / 6) if kind == "a" else np.cos(t / 3) * 2
        rows.append((load + 0.05 * rng.normal(), kind, (3 * load + 1) if kind == "a" else (-load + 5)))
    return rows


def _template():
    return streamrnn.RecurrentRegressor(hidden_size=6, truncation=4, seed=0, dtype="float64")


COMMON = dict(task="regress", target="temp", features=["load"])


def _keyed(path, store, sink=None, **kw):
    return KeyedRunner(CsvSource(path), sink or ListSink(), _template(), key_field="kind", store=store, **COMMON, **kw)


def test_each_key_has_its_own_model_equal_to_one_fed_that_key_alone(tmp_path):
    rows = _rows()
    sink = ListSink()
    runner = _keyed(_csv(tmp_path / "all.csv", rows), DirectoryStore(tmp_path / "state"), sink)
    runner.run(handle_signals=False)
    assert runner.stats.events_in == len(rows) and runner.stats.balanced and runner.model_count() == 2
    for kind in "ab":
        alone = ListSink()
        Runner(CsvSource(_csv(tmp_path / f"{kind}.csv", [r for r in rows if r[1] == kind])), alone, _template(),
               **COMMON).run(handle_signals=False)
        keyed = [r["prediction"] for r in sink.records if r["key"] == kind]
        assert keyed == [r["prediction"] for r in alone.records]


def test_a_resumed_run_skips_what_the_store_covers_and_ends_as_an_uninterrupted_one(tmp_path):
    path = _csv(tmp_path / "all.csv", _rows())
    whole = ListSink()
    _keyed(path, DirectoryStore(tmp_path / "whole"), whole).run(handle_signals=False)

    first, second = ListSink(), ListSink()
    _keyed(path, DirectoryStore(tmp_path / "state"), first).run(max_events=100, handle_signals=False)
    resumed = _keyed(path, DirectoryStore(tmp_path / "state"), second)
    resumed.run(handle_signals=False)
    # the file replays from the start: the events the restored marker covers are skipped, not relearned
    assert resumed.covered == 100 and resumed.restored == {(str(path), 0): 99}
    assert [r["prediction"] for r in first.records + second.records] == [r["prediction"] for r in whole.records]


def _recording(path, events):
    with open(path, "w") as f:
        for partition, offset, key, value in events:
            f.write(json.dumps({"topic": "metrics", "partition": partition, "offset": offset, "timestamp_ms": 0,
                                "key": base64.b64encode(key).decode() if key is not None else None,
                                "value": base64.b64encode(json.dumps(value).encode()).decode(),
                                "headers": []}) + "\n")
    return path


def test_message_keys_pick_the_models_partition_by_partition(tmp_path):
    """``key_field='@key'``: the message key names the model; each partition keeps its own
    models and marker in the store."""
    rng = np.random.default_rng(3)
    events, offsets = [], {0: 0, 1: 0}
    for t in range(120):
        key = [b"x", b"y", b"z"][t % 3]
        partition = 0 if key == b"x" else 1  # as Kafka's partitioner would: a key stays in its partition
        load = float(rng.normal())
        events.append((partition, offsets[partition], key, {"load": load, "temp": 2 * load + (key == b"z")}))
        offsets[partition] += 1
    path = _recording(tmp_path / "rec.jsonl", events)
    store = DirectoryStore(tmp_path / "state")
    runner = KeyedRunner(RecordingSource(path), ListSink(), _template(), key_field="@key", store=store, **COMMON)
    runner.run(handle_signals=False)
    assert {tp: sorted(m.hot) for tp, m in runner.partitions.items()} == {("metrics", 0): ["x"],
                                                                          ("metrics", 1): ["y", "z"]}
    again = KeyedRunner(RecordingSource(path), ListSink(), _template(), key_field="@key",
                        store=DirectoryStore(tmp_path / "state"), **COMMON)
    again.run(handle_signals=False)
    assert again.restored == {("metrics", 0): 39, ("metrics", 1): 79} and again.covered == 120
    assert again.stats.events_in == 0
    for (tp, models) in runner.partitions.items():
        for key, model in models.hot.items():
            x = {"load": 0.5}
            assert again.partitions[tp].get(key).predict_one(x) == model.predict_one(x)


def test_records_whose_key_cannot_name_a_model_are_dead_lettered_and_the_rest_predicted(tmp_path):
    """A missing key field, a key that is not a scalar, and a key that is not valid text each go
    to the dead-letter sink with the reason; every event is accounted for and the models of the
    good keys learn as if the bad records were not there."""
    from connectors.files import JsonlSource

    good = [{"kind": "ab"[t % 2], "load": float(np.sin(t / 5)), "temp": float(2 * np.sin(t / 5))} for t in range(40)]
    bad = [{"load": 1.0, "temp": 2.0}, {"kind": {"nested": 1}, "load": 1.0, "temp": 2.0},
           {"kind": "\ud800", "load": 1.0, "temp": 2.0}]
    path = tmp_path / "in.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for t, record in enumerate(good):
            f.write(json.dumps(record) + "\n")
            if t in (5, 17, 30):
                f.write(json.dumps(bad[(t > 5) + (t > 17)]) + "\n")
    dead, sink = ListSink(), ListSink()
    runner = KeyedRunner(JsonlSource(path), sink, _template(), key_field="kind", dead_letter=dead,
                         store=DirectoryStore(tmp_path / "state"), **COMMON)
    runner.run(handle_signals=False)
    assert runner.stats.events_in == 43 and runner.stats.dead_lettered == 3 and runner.stats.balanced
    assert sorted(runner.dead_reasons) == ["key field 'kind' is not a scalar",
                                           "key field 'kind' is not valid text (a lone surrogate)",
                                           "missing key field 'kind'"]
    clean = ListSink()
    path_clean = tmp_path / "clean.jsonl"
    path_clean.write_text("".join(json.dumps(r) + "\n" for r in good), encoding="utf-8")
    KeyedRunner(JsonlSource(path_clean), clean, _template(), key_field="kind", store=DirectoryStore(tmp_path / "s2"),
                **COMMON).run(handle_signals=False)
    assert [r["prediction"] for r in sink.records] == [r["prediction"] for r in clean.records]
