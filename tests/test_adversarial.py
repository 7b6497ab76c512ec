"""The runner and the estimators against an attacker and a careless producer: state files and
records that carry code, forged markers, poison messages, extreme values, refused calls."""

import json
import math
import os
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import streamrnn
from connectors.base import decode_json
from connectors.files import JsonlSink, JsonlSource
from test_runner_files import read_jsonl
from streamrnn import persist
from streamrnn.base import MAX_ABS
from streamrnn.keyed import KeyedRunner
from streamrnn.runner import Runner
from streamrnn.state import MARKER, DirectoryStore, _record_key

from test_runner_files import write_csv

# ------------------------------------------------------------------------------ code in state
SENTINEL = None  # set per test: the file a payload would create if it were ever unpickled


class _Payload:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):  # unpickling calls open(path, "w"): the file appears
        return (open, (self.path, "w"))


def payload(path) -> bytes:
    return pickle.dumps(_Payload(path))


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "streamrnn.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(result):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_a_pickle_in_a_checkpoint_file_never_runs(tmp_path):
    sentinel = tmp_path / "owned"
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(payload(sentinel))
    data = write_csv(tmp_path / "s.csv", n=30)
    out = cli("run", "--source", f"file:{data}", "--sink", "null:", "--task", "regress", "--target", "temp",
              "--features", "load", "--checkpoint", str(ckpt), "--quiet")
    assert "pickle" in one_line_error(out)
    assert not sentinel.exists()


def test_a_pickle_in_a_directory_store_never_runs(tmp_path):
    sentinel = tmp_path / "owned"
    data = write_csv(tmp_path / "s.csv", n=30)
    state = tmp_path / "state"
    DirectoryStore(state)._path(str(data), 0).write_bytes(payload(sentinel))
    out = cli("run", "--source", f"file:{data}", "--sink", "null:", "--task", "regress", "--target", "temp",
              "--features", "load", "--key", "kind", "--state", f"dir:{state}", "--quiet")
    assert "pickle" in one_line_error(out)
    assert not sentinel.exists()


def test_a_forged_marker_in_a_directory_store_is_refused(tmp_path):
    """The issue's attack: one marker record with a huge offset made every event count as covered
    (60 in, 0 out, exit 0)."""
    data = write_csv(tmp_path / "s.csv", n=60)
    state = tmp_path / "state"
    forged = persist.pack_document({"kind": "marker", "topic": str(data), "marker": 10**12})
    DirectoryStore(state).write(str(data), 0, [(_record_key(str(data), MARKER), forged)])
    out = cli("run", "--source", f"file:{data}", "--sink", str(tmp_path / "p.jsonl"), "--task", "regress",
              "--target", "temp", "--features", "load", "--key", "kind", "--state", f"dir:{state}", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "events in: 60  predictions out: 60" in out.stderr
    assert "refused 1 state records" in out.stderr and "beyond the input partition's end" in out.stderr
    assert len(read_jsonl(tmp_path / "p.jsonl")) == 60


def test_state_format_refuses_what_it_did_not_write():
    model = streamrnn.RecurrentClassifier(hidden_size=4, embedding_size=2, ngram_order=2, ngram_buckets=16, seed=0)
    for i in range(40):
        model.learn_one({"prev": "abc"[i % 3]}, "abc"[(i + 1) % 3])
    blob = persist.dumps(model)
    assert persist.loads(blob).predict_proba_one({"prev": "a"}) == model.predict_proba_one({"prev": "a"})
    header, arrays = persist.unpack_document(blob)
    head = json.dumps({k: v for k, v in header.items()})

    def forged(change):
        h = json.loads(head)
        change(h)
        return persist.pack_document(h, list(arrays.items()))

    def set_counter(slot, value):
        meta = arrays["_meta"].copy()
        meta[slot] = value
        return persist.pack_document(json.loads(head), [("_meta", meta), ("_mem", arrays["_mem"])])

    from streamrnn.kernels import blocks

    mem = arrays["_mem"].copy()
    mem[-1] = np.nan
    bad = {
        "unknown class": forged(lambda h: h.update({"class": "os.system"})),
        "bad parameter": forged(lambda h: h["params"].__setitem__(1, -5)),
        "huge hidden size": forged(lambda h: h["params"].__setitem__(1, 10**6)),
        "window position": set_counter(blocks.POS, 10**9),
        "token capacity": set_counter(blocks.TOKEN_CAP, 10**9),
        "steps behind the position": set_counter(blocks.N_STEPS, 3),
        "non-finite value": persist.pack_document(json.loads(head), [("_meta", arrays["_meta"]), ("_mem", mem)]),
        "cut short": blob[:-100],
        "a pickle": pickle.dumps(model),
    }
    for what, forged_blob in bad.items():
        with pytest.raises(persist.StateError):
            persist.loads(forged_blob)
    # index blocks out of range would make the kernels read and write past other blocks
    from streamrnn import layout

    for kind, value in ((blocks.TOK, 10**6), (blocks.NGB, -3), (blocks.YS, 7)):
        poisoned = pickle.loads(pickle.dumps(model))
        layout.block(poisoned._mem, poisoned._meta, kind)[poisoned._meta[blocks.POS] - 1] = value
        with pytest.raises(persist.StateError, match="out of range"):
            persist.loads(persist.dumps(poisoned))


def test_signed_state_refuses_forgery_and_unsigned_state():
    model = streamrnn.RecurrentRegressor(hidden_size=4, seed=0)
    model.learn_one({"a": 1.0}, 2.0)
    blob = persist.dumps(model, b"secret")
    assert persist.loads(blob, b"secret").predict_one({"a": 1.0}) == model.predict_one({"a": 1.0})
    for secret in (None, b"other"):
        with pytest.raises(persist.StateError):
            persist.loads(blob, secret)
    with pytest.raises(persist.StateError, match="not signed"):
        persist.loads(persist.dumps(model), b"secret")


def test_resuming_from_a_checkpoint_or_a_directory_store_unpickles_nothing(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=200)
    make = lambda: streamrnn.RecurrentRegressor(hidden_size=4, seed=0)  # noqa: E731
    ckpt, state = tmp_path / "c.ckpt", tmp_path / "state"
    common = dict(task="regress", target="temp", features=["load"])
    Runner(JsonlSource(_as_jsonl(data, tmp_path)), JsonlSink(os.devnull), make(), checkpoint_path=ckpt,
           **common).run(max_events=100, handle_signals=False)
    KeyedRunner(JsonlSource(_as_jsonl(data, tmp_path)), JsonlSink(os.devnull), make(), key_field="kind",
                store=DirectoryStore(state), **common).run(max_events=100, handle_signals=False)
    seen = []
    _AUDIT.append(seen)
    try:
        r = Runner(JsonlSource(_as_jsonl(data, tmp_path)), JsonlSink(os.devnull), make(), checkpoint_path=ckpt,
                   **common)
        r.run(handle_signals=False)
        k = KeyedRunner(JsonlSource(_as_jsonl(data, tmp_path)), JsonlSink(os.devnull), make(), key_field="kind",
                        store=DirectoryStore(state), **common)
        k.run(handle_signals=False)
    finally:
        _AUDIT.remove(seen)
    assert r.stats.events_in == 200 and sum(len(m) for m in k.partitions.values()) == 2
    assert seen == [], seen


_AUDIT: list = []


def _audit(event, args):
    if event == "pickle.find_class":
        for seen in _AUDIT:
            seen.append(args)


sys.addaudithook(_audit)


def _as_jsonl(csv_path, tmp_path):
    out = tmp_path / "s.jsonl"
    if not out.exists():
        lines = open(csv_path).read().splitlines()
        names = lines[0].split(",")
        out.write_text("".join(json.dumps(dict(zip(names, r.split(",")))) + "\n" for r in lines[1:]))
    return out


# ------------------------------------------------------------------------------ poison messages
def poison_messages(rng: random.Random, n: int) -> list[bytes]:
    """``n`` messages, about half of them bad in one of the ways producers get it wrong."""
    def valid():
        t = rng.uniform(-5, 5)
        return {"k": rng.choice(["a", "b", "c"]), "v": t, "t": 2 * t + 1, "ts": 1_700_000_000 + rng.randrange(10**6)}

    kinds = [
        lambda: json.dumps(valid()).encode(),
        lambda: json.dumps(valid()).encode(),
        lambda: b"[" * rng.randrange(900, 5000) + b"]" * rng.randrange(0, 5000),  # nesting
        lambda: b'{"k": "a", "t": 1.0, "v": ' + b"9" * rng.randrange(300, 6000) + b"}",  # huge integers
        lambda: b'{"k": "a", "v": 1.0, "t": -' + b"7" * rng.randrange(310, 400) + b"}",
        lambda: bytes(rng.randrange(128, 256) for _ in range(rng.randrange(1, 40))),  # bad UTF-8
        lambda: json.dumps({**valid(), "pad": "x" * rng.randrange(2100, 5000)}).encode(),  # oversized
        lambda: json.dumps({**valid(), "v": rng.choice([[1], {"a": 1}, "abc", True, None, "nan"])}).encode(),
        lambda: json.dumps({**valid(), "t": rng.choice([[1], "inf", None, 1e400 if False else "1e999"])}).encode(),
        lambda: json.dumps({**valid(), "k": rng.choice(["\ud800", {"x": 1}, [1], None])}).encode(),  # bad keys
        lambda: json.dumps({**valid(), "ts": rng.choice([1e300, "nan", -1e20, "not a time", [1]])}).encode(),
        lambda: rng.choice([b"[1, 2]", b'"text"', b"null", b"{", b"{}", b"3"]),  # wrong types
    ]
    out = []
    for _ in range(n):
        m = rng.choice(kinds)().replace(b"\n", b" ").replace(b"\r", b" ")
        out.append(m if m.strip() else b"{}")
    return out


MAX_BYTES = 2000


def _check_dead_letters(letters, dead_lettered):
    assert len(letters) == dead_lettered
    for letter in letters:
        assert letter["headers"]["streamrnn.error"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_ten_thousand_poison_messages_through_the_file_runner(tmp_path_factory, seed):
    """20 examples of 500 messages: events in = predictions out + dead-lettered, every dead letter
    in the sink with its reason, and the runner never stops (keyed, so the keys reach the store)."""
    tmp = tmp_path_factory.mktemp("poison")
    messages = poison_messages(random.Random(seed), 500)
    path = tmp / "in.jsonl"
    path.write_bytes(b"\n".join(messages) + b"\n")
    dead = JsonlSink(tmp / "dead.jsonl")
    runner = KeyedRunner(JsonlSource(path, "ts"), JsonlSink(tmp / "out.jsonl"),
                         streamrnn.RecurrentRegressor(hidden_size=4, seed=0), task="regress", target="t",
                         features=["v"], key_field="k", timestamp_field="ts", store=DirectoryStore(tmp / "state"),
                         dead_letter=dead, max_message_bytes=MAX_BYTES, checkpoint_every=97)
    stats = runner.run(handle_signals=False)
    dead.close()
    assert stats.events_in == len(messages) and stats.balanced
    assert len(read_jsonl(tmp / "out.jsonl")) == stats.predictions_out
    _check_dead_letters(read_jsonl(tmp / "dead.jsonl"), stats.dead_lettered)
    assert stats.dead_lettered > 200 and stats.predictions_out > 40


def test_ten_thousand_poison_messages_through_the_broker(kafka_bootstrap, tmp_path):
    from kafka_util import consume_all, create_topic, produce, records, unique

    messages = poison_messages(random.Random(7), 10_000)
    src = create_topic(kafka_bootstrap, unique("poison"), 2)
    out, dlq, group = unique("pred"), unique("dlq"), unique("g")
    keys = [random.Random(i).choice([None, b"a", b"\xff\xfe", b"k" * 300]) for i in range(len(messages))]
    produce(kafka_bootstrap, src, messages, keys=keys)
    result = cli("run", "--source", f"kafka://{kafka_bootstrap}/{src}", "--sink", f"kafka://{kafka_bootstrap}/{out}",
                 "--dead-letter", f"kafka://{kafka_bootstrap}/{dlq}", "--group", group, "--task", "regress",
                 "--target", "t", "--features", "v", "--key", "k", "--timestamp", "ts", "--hidden-size", "4",
                 "--max-message-bytes", str(MAX_BYTES), "--idle-timeout", "8", "--quiet",
                 "--max-dead-letter-ratio", "1", timeout=600)  # poison is most of this stream
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(s for s in result.stderr.splitlines() if s.startswith("events in:"))
    numbers = [int(w.replace(",", "")) for w in line.replace("(", " ").split() if w.replace(",", "").isdigit()]
    events_in, predicted, dead = numbers[:3]
    assert events_in == len(messages) and predicted + dead == events_in
    assert len(records(consume_all(kafka_bootstrap, out))) == predicted
    letters = consume_all(kafka_bootstrap, dlq)
    assert len(letters) == dead > 1000
    for m in letters:
        assert dict(m.headers)["streamrnn.error"]


def test_decoding_refuses_deep_nesting_and_huge_integers_as_bad_input():
    from connectors.base import DecodeError

    for raw in (b"[" * 100_000, b'{"a": ' + b"1" * 10_000 + b"}"):
        with pytest.raises(DecodeError):
            decode_json(raw)


# ------------------------------------------------------------------------------ extreme values
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("estimator", ["regressor", "forecaster", "classifier"])
def test_a_million_extreme_values_keep_every_prediction_finite(dtype, estimator):
    """The running statistics overflowed after some millions of values near the accepted limit
    (a -inf prediction after 17,977 events of +-1e152 in float64)."""
    n, limit = 1_000_000, MAX_ABS[dtype]
    params = dict(hidden_size=2, truncation=2, update_every=2, dtype=dtype, seed=0)
    values = np.where(np.arange(n) % 2 == 0, limit, -limit).tolist()
    bad = 0
    if estimator == "regressor":
        model = streamrnn.RecurrentRegressor(**params)
        for v in values:
            p = model.predict_learn_one({"a": v}, v)
            bad += not math.isfinite(p)
    elif estimator == "forecaster":
        model = streamrnn.RecurrentForecaster(**params)
        for v in values:
            bad += not math.isfinite(model.forecast(1)[0])
            model.learn_one(v)
    else:
        model = streamrnn.RecurrentClassifier(**params)
        for i, v in enumerate(values[: n // 4]):  # the classifier's target is a label: its inputs are what is extreme
            if i % 16 == 0:
                bad += not all(math.isfinite(p) for p in model.predict_proba_one({"a": v}).values())
            model.learn_one({"a": v}, i % 3)
    assert bad == 0
    assert np.isfinite(model._mem).all()


# ------------------------------------------------------------------------------ refused calls
BAD_VALUES = [math.nan, math.inf, -math.inf, 1e300, 10**400, [1.0], {"a": 1}, b"x", 1 + 2j]


@settings(max_examples=60, deadline=None)
@given(estimator=st.sampled_from(["regressor", "forecaster", "classifier"]),
       good=st.lists(st.floats(-100, 100), min_size=1, max_size=30),
       bad=st.sampled_from(BAD_VALUES), where=st.sampled_from(["a", "b", "y", "name"]),
       call=st.sampled_from(["predict", "learn"]))
def test_any_refused_call_leaves_the_model_bit_identical_to_an_untouched_twin(estimator, good, bad, where, call):
    if estimator == "classifier" and where == "y":
        assume(isinstance(bad, float) and not math.isfinite(bad))  # other labels are labels, or unhashable
    make = {"regressor": streamrnn.RecurrentRegressor, "forecaster": streamrnn.RecurrentForecaster,
            "classifier": streamrnn.RecurrentClassifier}[estimator]
    model, twin = make(hidden_size=4, seed=0), make(hidden_size=4, seed=0)

    def learn(m, x, y):
        if estimator == "forecaster":
            m.learn_one(y, x)
        else:
            m.learn_one(x, y)

    for i, v in enumerate(good):
        for m in (model, twin):
            learn(m, {"a": v, "b": -v}, i % 3 if estimator == "classifier" else v)
    x = {"a": 1.0, "b": 2.0}
    if where in "ab":
        x[where] = bad
    elif where == "name":
        x[("a", "red")] = 1.0
    with pytest.raises(streamrnn.BadInput):
        if call == "learn" or where == "y":
            learn(model, x, bad if where == "y" else 1)
        elif estimator == "forecaster":
            model.forecast(2, [x, x])
        elif estimator == "classifier":
            model.predict_proba_one(x)
        else:
            model.predict_one(x)
    assert pickle.dumps(model) == pickle.dumps(twin)
    # and the next call is the same on both: no half-written input survives the refusal
    for m in (model, twin):
        learn(m, {"a": 1.0, "b": 2.0}, 1)
    assert pickle.dumps(model) == pickle.dumps(twin)


def test_a_pickle_and_a_forged_marker_in_the_changelog_are_refused(kafka_bootstrap, tmp_path):
    from kafka_util import consume_all, create_topic, produce, records, unique

    sentinel = tmp_path / "owned"
    src, out, group = create_topic(kafka_bootstrap, unique("sensors"), 1), unique("pred"), unique("g")
    produce(kafka_bootstrap, src, [json.dumps({"k": "abc"[i % 3], "t": float(i % 7)}).encode() for i in range(60)])
    changelog = create_topic(kafka_bootstrap, f"{group}-models-changelog", 1)
    forged_marker = persist.pack_document({"kind": "marker", "topic": src, "marker": 10**12})
    produce(kafka_bootstrap, changelog, [b"\0" * 8 + payload(sentinel), b"999999999", forged_marker],
            keys=[f"{src}|a".encode(), f"{src}|{MARKER}".encode(), f"{src}|{MARKER}".encode()], partition=0)
    result = cli("run", "--source", f"kafka://{kafka_bootstrap}/{src}", "--sink", f"kafka://{kafka_bootstrap}/{out}",
                 "--group", group, "--task", "forecast", "--target", "t", "--key", "k", "--hidden-size", "4",
                 "--idle-timeout", "5", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "events in: 60  predictions out: 60" in result.stderr
    assert "refused 3 state records" in result.stderr
    assert len(records(consume_all(kafka_bootstrap, out))) == 60
    assert not sentinel.exists()
