"""The README's examples run as written: its Python blocks, its `streamrnn run` commands over files
shipped in the repository, and its live Kafka example against the test broker (the scale-out
example names a cluster of the reader's and is not run)."""

import pathlib
import re
import shlex
import subprocess
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def file_commands():
    out = []
    for block in blocks("bash"):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            if words[:2] == ["streamrnn", "run"]:
                source = words[words.index("--source") + 1]
                if source.startswith("file:") and (ROOT / source[5:]).resolve().is_relative_to(ROOT):
                    out.append(words)
    return out


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_python_blocks_run(number, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks("python")[number], f"README.md python block {number}", "exec"), {})


def test_the_first_commands_are_the_two_setup_commands():
    first = blocks("bash")[0].strip().splitlines()
    assert first == ['pip install -e . && streamrnn demo', 'pip install -e ".[test]" && python3 -m pytest -q']


@pytest.mark.parametrize("words", file_commands(), ids=lambda w: w[w.index("--source") + 1])
def test_file_commands_run_and_beat_their_baseline(words, tmp_path):
    words = [w if not w.startswith("file:") or w == words[words.index("--source") + 1] else f"file:{tmp_path}/{w[5:]}"
             for w in words]
    result = subprocess.run([sys.executable, "-m", "streamrnn.cli", *words[1:], "--quiet"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    if words[words.index("--task") + 1] == "anomaly":  # no labels, so no baseline: the alerts are reported
        assert re.search(r"alerts: \d+ events scored", result.stderr), result.stderr
    else:
        assert "the model is better" in result.stderr, result.stderr


def test_the_readme_has_file_commands():
    assert file_commands(), "the README shows no runnable file example"


def test_the_live_kafka_example_runs_against_a_broker(kafka_bootstrap, tmp_path):
    (block,) = [b for b in blocks("bash") if "streamrnn publish" in b]
    commands = [shlex.split(c, comments=True) for c in block.replace("\\\n", " ").splitlines()]
    suffix = uuid.uuid4().hex[:8]

    def local(word):  # the test broker's address, topics and group of this test's own, files in tmp_path
        if word.startswith("kafka://127.0.0.1:9092/"):
            return f"kafka://{kafka_bootstrap}/{word.rsplit('/', 1)[1]}-{suffix}"
        return f"{word}-{suffix}" if word == "sensors-lstm" else str(tmp_path / word) if word.endswith(".ckpt") else word

    ran = []
    for words in commands:
        if words[:2] in (["streamrnn", "publish"], ["streamrnn", "run"]):
            result = subprocess.run([sys.executable, "-m", "streamrnn.cli", *map(local, words[1:]), "--quiet"]
                                    if words[1] == "run" else [sys.executable, "-m", "streamrnn.cli",
                                                               *map(local, words[1:])],
                                    cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr
            ran.append(result.stderr)
    assert len(ran) == 2 and "published 600 records" in ran[0], ran
    assert "events in: 600  predictions out: 600  dead-lettered: 0" in ran[1], ran[1]
    assert "the model is better" in ran[1], ran[1]
