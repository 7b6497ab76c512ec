"""The runner over file connectors: prequential predictions, dead letters, checkpoints."""

import datetime as dt
import json
import time

import numpy as np
import pytest
from river import metrics

import streamrnn
from streamrnn import checkpoint, persist, state
from connectors import ListSink
from connectors.files import CsvSource, JsonlSink, JsonlSource, RecordingSink, RecordingSource
from connectors.base import Event
from streamrnn.runner import Runner


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def write_csv(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("ts,load,kind,temp\n")
        for t in range(n):
            load = np.sin(t / 10) + 0.1 * rng.normal()
            f.write(f"2024-01-01T00:{t // 60 % 60:02d}:{t % 60:02d},{load:.6f},{'ab'[t % 2]},{2 * load + 1:.6f}\n")
    return path


def model():
    return streamrnn.RecurrentRegressor(hidden_size=8, seed=0)


def test_csv_replay_predicts_then_learns(tmp_path):
    path = write_csv(tmp_path / "s.csv")
    sink = ListSink()
    r = Runner(CsvSource(path), sink, model(), task="regress", target="temp", features=["load"],
               categorical=["kind"], timestamp_field="ts", metric=metrics.MAE())
    stats = r.run(handle_signals=False)
    assert stats.events_in == 300 and stats.predictions_out == 300 and stats.dead_lettered == 0
    # the same predictions, by hand: predict_one before learn_one on each row
    m = model()
    rows = [line.split(",") for line in open(path).read().splitlines()[1:]]
    for rec, (ts, load, kind, temp) in zip(sink.records, rows):
        # --timestamp gives the model the event's time (calendar inputs)
        x = {"load": float(load), "kind": kind, "ts": dt.datetime.fromisoformat(ts).replace(tzinfo=dt.timezone.utc)}
        assert rec["prediction"] == pytest.approx(m.predict_one(x), abs=1e-12)
        m.learn_one(x, float(temp))
        assert rec["timestamp"] == ts
    # it learned: late errors are far below early ones
    err = [abs(r["prediction"] - r["y"]) for r in sink.records]
    assert np.mean(err[-50:]) < 0.5 * np.mean(err[:50])


BROKEN = [
    (b"{not json", "malformed JSON"),
    (b'{"load": 1.0}', "missing target field 'temp'"),
    (b'{"temp": 1.0}', "missing feature field 'load'"),
    (b'{"temp": 1.0, "load": "abc"}', "feature 'load' is not numeric"),
    (b'{"temp": "NaN", "load": 1.0}', "target 'temp' is not finite"),
    (b'{"temp": 1e999, "load": 1.0}', "target 'temp' is not finite"),
    (b'[1, 2, 3]', "expected a JSON object"),
    (b'{"temp": 1.0, "load": ' + b"1" * 2000 + b"}", "oversized message"),
    (b"\xff\xfe", "malformed JSON"),
]


def test_bad_input_goes_to_the_dead_letter_sink_and_counts_add_up(tmp_path):
    lines = []
    for t in range(100):
        lines.append(json.dumps({"temp": float(t % 7), "load": float(t % 5)}).encode())
        if t % 10 == 3:
            lines.append(BROKEN[(t // 10) % len(BROKEN)][0])
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    clean = model()
    for line in lines:
        try:
            rec = json.loads(line)
            if isinstance(rec, dict) and set(rec) == {"temp", "load"} and len(line) < 1000 and all(
                    isinstance(v, float) and np.isfinite(v) for v in rec.values()):
                clean.learn_one({"load": rec["load"]}, rec["temp"])
        except (ValueError, UnicodeDecodeError):
            pass

    dead = JsonlSink(tmp_path / "dead.jsonl")
    sink = ListSink()
    r = Runner(JsonlSource(path), sink, model(), task="regress", target="temp", features=["load"],
               dead_letter=dead, max_message_bytes=1000)
    stats = r.run(handle_signals=False)
    dead.close()
    assert stats.events_in == len(lines)
    assert stats.dead_lettered == 10 and stats.predictions_out == 100 and stats.balanced
    letters = read_jsonl(tmp_path / "dead.jsonl")
    assert len(letters) == 10
    for letter in letters:
        reason = letter["headers"]["streamrnn.error"]
        original = [b for b, why in BROKEN if why in reason]
        assert original, reason
        value = letter["value"]
        raw = value["text"].encode() if "text" in value else __import__("base64").b64decode(value["base64"])
        assert raw in original
    # the broken events did not touch the model
    assert np.array_equal(r.model._mem, clean._mem)


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    path = write_csv(tmp_path / "s.csv", n=500)
    full = ListSink()
    uninterrupted = Runner(CsvSource(path), full, model(), task="regress", target="temp", features=["load"],
                           categorical=["kind"], metric=metrics.MAE())
    uninterrupted.run(handle_signals=False)

    ckpt = tmp_path / "run.ckpt"
    first = ListSink()
    r1 = Runner(CsvSource(path), first, model(), task="regress", target="temp", features=["load"],
                categorical=["kind"], checkpoint_path=ckpt, checkpoint_every=50, metric=metrics.MAE())
    r1.run(max_events=230, handle_signals=False)
    second = ListSink()
    r2 = Runner(CsvSource(path), second, model(), task="regress", target="temp", features=["load"],
                categorical=["kind"], checkpoint_path=ckpt, checkpoint_every=50, metric=metrics.MAE())
    stats = r2.run(handle_signals=False)
    assert stats.events_in == 500 and stats.balanced
    got = first.records + second.records
    assert [g["source"] for g in got] == [f["source"] for f in full.records]
    assert [g["prediction"] for g in got] == [f["prediction"] for f in full.records]
    # the metric resumed where it was: the same as the uninterrupted run's
    assert r2.metric.get() == pytest.approx(uninterrupted.metric.get(), rel=1e-12)
    final = checkpoint.load(ckpt).model
    # the whole live state (stale window rows are not part of a model: see layout.pack)
    assert same_state(final, uninterrupted.model)


def _old_format_checkpoint(path, saved: checkpoint.Checkpoint, baseline):
    """A checkpoint as streamrnn wrote it before the store format: one ``"checkpoint"`` document
    with the model's fields and arrays beside the positions, counts, metric and baseline."""
    fields, arrays = persist.model_parts(saved.model)
    path.write_bytes(persist.pack_document({
        "kind": "checkpoint", "model": fields, "metric": persist.encode_metric(saved.metric),
        "positions": [[t, p, o] for (t, p), o in saved.positions.items()],
        "stats": __import__("dataclasses").asdict(saved.stats), "baseline": baseline}, arrays))


def test_a_checkpoint_is_a_store_file_with_one_key_and_an_old_format_one_resumes(tmp_path):
    path = write_csv(tmp_path / "s.csv", n=300)
    common = dict(task="regress", target="temp", features=["load"], categorical=["kind"], checkpoint_every=50)
    full = ListSink()
    uninterrupted = Runner(CsvSource(path), full, model(), metric=metrics.MAE(), **common)
    uninterrupted.run(handle_signals=False)

    ckpt = tmp_path / "run.ckpt"
    first = ListSink()
    Runner(CsvSource(path), first, model(), checkpoint_path=ckpt, metric=metrics.MAE(),
           **common).run(max_events=120, handle_signals=False)
    # the file a keyed run's directory store writes, holding one model and the run's marker
    records = state.read_records(ckpt)
    assert set(records) == {b"model", b"__marker__"}
    assert persist.loads(records[b"model"], with_fields=True)[1]["key"] == "model"
    saved = checkpoint.load(ckpt)
    assert saved.positions == {(str(path), 0): 119} and saved.stats.events_in == 120

    # the same checkpoint in the format before the store: a run resumes from it as from the new one
    marker, _ = persist.unpack_document(records[b"__marker__"])
    _old_format_checkpoint(ckpt, saved, marker["baseline"])
    second = ListSink()
    resumed = Runner(CsvSource(path), second, model(), checkpoint_path=ckpt, metric=metrics.MAE(), **common)
    assert resumed.stats.events_in == 120 and resumed.baseline is not None
    resumed.run(handle_signals=False)
    got = first.records + second.records
    assert [g["prediction"] for g in got] == [f["prediction"] for f in full.records]
    assert resumed.metric.get() == pytest.approx(uninterrupted.metric.get(), rel=1e-12)
    assert resumed.baseline.metric.get() == pytest.approx(uninterrupted.baseline.metric.get(), rel=1e-12)
    # ... and its next checkpoint is in the store format
    assert set(state.read_records(ckpt)) == {b"model", b"__marker__"}
    assert same_state(checkpoint.load(ckpt).model, uninterrupted.model)


@pytest.mark.parametrize("records,reason", [
    ({}, "not a one-model checkpoint"),
    ({b"model": "MODEL"}, "not a one-model checkpoint"),
    ({b"model": "MODEL", b"__marker__": "MODEL"}, "no run marker"),
    ({b"model": "MODEL", b"__marker__": "MARKER", b"other": b""}, "not a one-model checkpoint"),
    ({b"model": "MODEL_OTHER_KEY", b"__marker__": "MARKER"}, "saved under another key"),
    ({b"model": "MODEL", b"__marker__": "MARKER_BAD_POSITIONS"}, "bad positions"),
])
def test_a_checkpoint_store_file_is_checked_record_by_record(tmp_path, records, reason):
    path = write_csv(tmp_path / "s.csv", n=10)
    blobs = {"MODEL": persist.dumps(model(), key="model"), "MODEL_OTHER_KEY": persist.dumps(model(), key="k"),
             "MARKER": persist.pack_document({"kind": "marker", "positions": [], "stats": {}}),
             "MARKER_BAD_POSITIONS": persist.pack_document({"kind": "marker", "positions": [["t", 0, "x"]]})}
    ckpt = tmp_path / "forged.ckpt"
    state.write_records(ckpt, {k: blobs.get(v, v) for k, v in records.items()})
    with pytest.raises(persist.StateError, match=reason):
        Runner(CsvSource(path), ListSink(), model(), task="regress", target="temp", features=["load"],
               checkpoint_path=ckpt)


def same_state(a, b):
    """Attribute by attribute, the arrays as their bytes (whole pickles may differ in how pickle
    memoises shared objects)."""
    sa, sb = a.__getstate__(), b.__getstate__()
    return sa.keys() == sb.keys() and all(type(sa[k]) is type(sb[k]) and sa[k] == sb[k] for k in sa)


def test_recording_replays_byte_for_byte(tmp_path):
    events = [Event(value=bytes([i, 255 - i]) + b'{"a":1}', topic="t", partition=i % 3, offset=i,
                    key=None if i % 2 else f"k{i}".encode(), headers=[("h", b"\x00\x01")] if i % 3 == 0 else [],
                    timestamp_ms=1000 + i) for i in range(20)]
    with RecordingSink(tmp_path / "t.rec") as rec:
        for e in events:
            rec.write_event(e)
    assert list(RecordingSource(tmp_path / "t.rec")) == events


def test_paced_replay_follows_timestamps(tmp_path):
    path = tmp_path / "paced.jsonl"
    path.write_text("".join(json.dumps({"ts": 1_700_000_000 + 2 * i, "v": i}) + "\n" for i in range(4)))
    start = time.monotonic()
    seen = list(JsonlSource(path, timestamp_field="ts", speed=10.0))
    # 6 s of event time at 10x: at least 0.6 s of wall time
    assert time.monotonic() - start >= 0.55
    assert [e.timestamp_ms for e in seen] == [(1_700_000_000 + 2 * i) * 1000 for i in range(4)]


def test_csv_sink_writes_predictions_and_dead_letters(tmp_path):
    import csv as _csv
    from connectors.files import CsvSink

    path = write_csv(tmp_path / "s.csv", n=50)
    with open(path, "a") as f:
        f.write("broken,row\n")
    sink, dead = CsvSink(tmp_path / "pred.csv"), CsvSink(tmp_path / "dead.csv")
    stats = Runner(CsvSource(path), sink, model(), task="regress", target="temp", features=["load"],
                   dead_letter=dead).run(handle_signals=False)
    sink.close()
    dead.close()
    rows = list(_csv.DictReader(open(tmp_path / "pred.csv")))
    assert len(rows) == 50 and stats.dead_lettered == 1
    assert [float(r["prediction"]) for r in rows[:1]] == [0.0]  # nothing learned before the first
    letters = list(_csv.DictReader(open(tmp_path / "dead.csv")))
    assert "broken,row" in letters[0]["value"] and "fields" in letters[0]["headers"]


def test_a_runner_refuses_an_interval_coverage_no_forecaster_can_give(tmp_path):
    path = write_csv(tmp_path / "s.csv", n=20)
    with pytest.raises(ValueError, match="at most 0.9796"):
        Runner(CsvSource(path), ListSink(), streamrnn.RecurrentForecaster(hidden_size=4), task="forecast",
               target="temp", interval=0.99)
