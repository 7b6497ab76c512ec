"""Text streams: growing vocabularies, surprise, generation, unicode."""

import json
import math
import pickle
import subprocess
import sys

import pytest
from river import checks, evaluate, metrics

import streamrnn
from connectors.text import TextSource, iter_symbols, iter_text
from streamrnn.runner import Runner
from connectors import ListSink

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40) + "naïve café — 東京 😀 ünïcödé. " * 10


def char_model(**kw):
    params = dict(hidden_size=16, embedding_size=8, truncation=8, update_every=2, seed=0)
    params.update(kw)
    return streamrnn.RecurrentClassifier(**params)


@pytest.mark.parametrize("ngram", [0, 4], ids=["rnn", "rnn+ngram"])
def test_growing_vocabulary_keeps_pickling_cloning_and_checks(ngram):
    model = char_model(ngram_order=ngram)
    sizes = []
    for i, (x, y) in enumerate(iter_text(TEXT)):
        model.learn_one(x, y)
        if i % 200 == 0:
            sizes.append(len(model._classes))
            clone = pickle.loads(pickle.dumps(model))
            assert clone.predict_proba_one(x) == model.predict_proba_one(x)
            assert type(model.clone()) is type(model)
    assert len(model._classes) == len(set(TEXT)) and sizes[-1] > sizes[0]
    for check in checks.yield_checks(char_model()):
        check(char_model())


@pytest.mark.parametrize("ngram", [0, 4], ids=["rnn", "rnn+ngram"])
def test_surprise_is_the_log_loss_of_the_prediction_before_learning(ngram):
    a, b = char_model(ngram_order=ngram), char_model(ngram_order=ngram)
    seen_inputs = set()
    compared = 0
    for x, y in iter_text(TEXT[:600]):
        proba = a.predict_proba_one(x)
        nats = b.learn_one_loss(x, y)
        a.learn_one(x, y)
        new_input = x.get("prev") not in seen_inputs  # learning gives it an embedding row first
        seen_inputs.add(x.get("prev"))
        if new_input:
            continue
        compared += 1
        if y in proba:
            assert nats == pytest.approx(-math.log(proba[y]), rel=1e-5, abs=1e-6)  # float32 model
        else:
            assert math.isinf(nats)  # a symbol never seen had probability 0
    assert compared > 500


@pytest.mark.parametrize("ngram", [0, 4], ids=["rnn", "rnn+ngram"])
def test_generation_is_deterministic_and_leaves_the_model_unchanged(ngram):
    model = char_model(ngram_order=ngram)
    for x, y in iter_text(TEXT):
        model.learn_one(x, y)
    before = pickle.dumps(model)
    a = model.generate(100, seed=7, temperature=0.8)
    b = model.generate(100, seed=7, temperature=0.8)
    assert a == b and len(a) == 100 and set(a) <= set(TEXT)
    assert model.generate(100, seed=8) != a
    assert pickle.dumps(model) == before
    # the model learned the repeated sentence: a cold sample mostly follows it
    cold = "".join(model.generate(60, seed=0, temperature=0.2))
    assert any(w in cold for w in ("the", "fox", "dog", "lazy", "café", "naïve"))


def test_generation_with_one_hot_inputs():
    model = char_model(embedding_size=None)
    for x, y in iter_text(TEXT[:800]):
        model.learn_one(x, y)
    before = pickle.dumps(model)
    assert model.generate(20, seed=1) == model.generate(20, seed=1)
    assert pickle.dumps(model) == before


def test_unicode_round_trips(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert "".join(iter_symbols(path)) == TEXT
    words = list(iter_symbols(path, "words"))
    assert words == TEXT.split()
    events = list(TextSource(path))
    assert len(events) == len(TEXT)
    source = TextSource(path)
    decoded = [source.decode(e) for e in events]
    assert "".join(d["next"] for d in decoded) == TEXT
    assert decoded[1]["prev"] == TEXT[0]
    model = char_model()
    for x, y in iter_text(path):
        model.learn_one(x, y)
    assert {"😀", "東", "é"} <= set(model._classes)
    assert all(isinstance(s, str) for s in model.generate(30, seed=3))


def test_text_through_river_and_the_runner(tmp_path):
    metric = evaluate.progressive_val_score(list(iter_text(TEXT[:1800])), char_model(), metrics.Accuracy())
    assert metric.get() > 0.4  # a repeated sentence is learned within a few repetitions
    path = tmp_path / "t.txt"
    path.write_text(TEXT[:500], encoding="utf-8")
    sink = ListSink()
    stats = Runner(TextSource(path), sink, char_model(), task="classify", target="next").run(handle_signals=False)
    assert stats.events_in == 500 and stats.predictions_out == 500


def test_cost_per_event_does_not_depend_on_vocabulary_seen_as_inputs():
    """With an embedding, the layer-0 weights do not grow with the number of categories."""
    model = char_model()
    for i in range(300):
        model.learn_one({"prev": f"w{i}"}, "a" if i % 2 else "b")
    assert model._cfg.n_inputs == 0 and model._cfg.n_tokens == 300
    assert model._cfg.layer0_inputs == 8


def test_cli_runs_a_character_model_with_ngram_connections(tmp_path):
    """`streamrnn run` on a text file, next-character task, embedding and n-gram connections."""
    path = tmp_path / "t.txt"
    path.write_text(TEXT[:600], encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    cmd = [sys.executable, "-m", "streamrnn.cli", "run", "--source", f"file:{path}", "--sink", f"file:{out}",
           "--task", "classify", "--target", "next", "--hidden-size", "16", "--embedding-size", "8",
           "--ngram-order", "3", "--ngram-buckets", "256", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 600
    # the repeated sentence is learned: late predictions are mostly right
    late = records[-200:]
    assert sum(r["prediction"] == r["y"] for r in late) > 120
    bad = subprocess.run(cmd[:-7] + ["--ngram-order", "3", "--quiet"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "embedding" in bad.stderr
