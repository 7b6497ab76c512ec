"""`streamrnn run` as a newcomer meets it: a run that did not do its job says so and exits non-zero;
a user error is one line they can act on (exit 2), with the traceback only under --debug."""

import json
import socket
import subprocess
import sys

import pytest

from test_adversarial import cli, one_line_error
from test_runner_files import write_csv

RUN = ["run", "--task", "regress", "--hidden-size", "4", "--quiet"]


def test_a_misspelt_target_predicts_nothing_and_says_which_fields_exist(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=50)
    result = cli(*RUN, "--source", f"file:{data}", "--sink", "null:", "--target", "valu")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "events in: 50  predictions out: 0  dead-lettered: 50" in result.stderr
    assert "MAE" not in result.stderr  # never a metric of no events
    assert "dead-lettered by reason: missing target field 'valu' (50)" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("streamrnn: error: nothing was predicted")
    assert "the records have the fields: ts, load, kind, temp" in last


def test_a_run_that_dead_letters_most_of_its_input_fails_unless_allowed(tmp_path):
    rows = [{"y": 1.0, "x": 2.0} if i % 5 < 2 else {"x": 2.0} for i in range(100)]  # 60% without a target
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [*RUN, "--source", f"file:{data}", "--sink", "null:", "--target", "y"]
    failed = cli(*args)
    assert failed.returncode == 1, failed.stderr
    assert "60% of the events were dead-lettered (over --max-dead-letter-ratio 0.5)" in failed.stderr
    assert "most often: missing target field 'y' (60 events)" in failed.stderr
    allowed = cli(*args, "--max-dead-letter-ratio", "0.7")
    assert allowed.returncode == 0, allowed.stderr
    assert "dead-lettered by reason: missing target field 'y' (60)" in allowed.stderr
    assert "MAE:" in allowed.stderr


def _predictions(path):
    return [json.loads(line)["prediction"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_with_another_delimiter_reads_as_the_comma_separated_one(tmp_path, delimiter):
    data = write_csv(tmp_path / "s.csv", n=60)
    other = tmp_path / "other.csv"
    other.write_text(data.read_text().replace(",", delimiter))
    for name, source in (("comma", data), ("other", other)):
        result = cli(*RUN, "--source", f"file:{source}", "--sink", f"file:{tmp_path / name}.jsonl", "--target", "temp",
                     "--features", "load", "--timestamp", "ts")
        assert result.returncode == 0, result.stderr
        assert "predictions out: 60  dead-lettered: 0" in result.stderr
    assert _predictions(tmp_path / "other.jsonl") == _predictions(tmp_path / "comma.jsonl")


def test_a_json_array_file_reads_as_json_lines_and_its_bad_elements_are_dead_lettered(tmp_path):
    rows = [{"x": float(i % 7), "y": float(i % 5)} for i in range(80)]
    lines, array = tmp_path / "s.jsonl", tmp_path / "s.json"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
    array.write_text(json.dumps(rows, indent=2))
    args = [*RUN, "--target", "y", "--features", "x"]
    for name, source in (("lines", lines), ("array", array)):
        result = cli(*args, "--source", f"file:{source}", "--sink", f"file:{tmp_path / name}.out.jsonl")
        assert result.returncode == 0, result.stderr
        assert "events in: 80  predictions out: 80" in result.stderr
    assert _predictions(tmp_path / "array.out.jsonl") == _predictions(tmp_path / "lines.out.jsonl")
    array.write_text(json.dumps(rows[:10])[:-1] + ', [1, 2], {"x": 1, "y": 2}] trailing')
    result = cli(*args, "--source", f"file:{array}", "--sink", "null:", "--dead-letter", f"file:{tmp_path}/dl.jsonl")
    assert result.returncode == 0, result.stderr
    assert "events in: 13  predictions out: 11  dead-lettered: 2" in result.stderr


@pytest.mark.parametrize("flag,uri", [("--source", "foo://x/y"), ("--sink", "s3://bucket/preds.jsonl")])
def test_an_unknown_scheme_is_named_in_one_line(tmp_path, flag, uri):
    data = write_csv(tmp_path / "s.csv", n=5)
    args = {"--source": f"file:{data}", "--sink": "null:", flag: uri}
    line = one_line_error(cli(*RUN, "--target", "temp", "--source", args["--source"], "--sink", args["--sink"]))
    assert f"unknown scheme {uri.split('://')[0]}://" in line


def test_a_bad_option_is_one_line_and_debug_shows_the_traceback(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=5)
    args = [*RUN, "--target", "temp", "--source", f"file:{data}", "--sink", "null:", "--kafka-option", "hunter2"]
    line = one_line_error(cli(*args))
    assert "key=value" in line and "hunter2" not in line
    debug = cli(*args, "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "hunter2" not in debug.stderr


def test_the_demo_runs_the_main_job_and_beats_persistence():
    result = cli("demo", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "events in: 578  predictions out: 578  dead-lettered: 0" in result.stdout, result.stdout
    assert "(persistence on the same events:" in result.stdout and "the model is better" in result.stdout


def test_version():
    import streamrnn

    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"streamrnn {streamrnn.__version__}"


def test_the_metric_is_printed_beside_persistence_on_the_same_events_also_after_a_resume(tmp_path):
    import numpy as np
    from river import metrics

    import streamrnn
    from connectors import NullSink
    from connectors.files import CsvSource
    from streamrnn.runner import Runner

    data = write_csv(tmp_path / "s.csv", n=400)
    temps = np.loadtxt(data, delimiter=",", skiprows=1, usecols=3)
    persistence = np.mean(np.abs(temps - np.concatenate([[0.0], temps[:-1]])))

    def runner(ckpt=None):
        return Runner(CsvSource(str(data)), NullSink(), streamrnn.RecurrentRegressor(hidden_size=4, seed=1), task="regress",
                      target="temp", features=["load"], metric=metrics.MAE(), checkpoint_path=ckpt)

    whole = runner()
    whole.run(handle_signals=False)
    assert whole.baseline.metric.get() == pytest.approx(persistence, rel=1e-12)
    assert "(persistence on the same events: " in whole.metric_report()

    ckpt = str(tmp_path / "r.ckpt")
    runner(ckpt).run(max_events=150, handle_signals=False)
    resumed = runner(ckpt)
    resumed.run(handle_signals=False)
    assert resumed.stats.events_in == 400
    assert resumed.baseline.metric.get() == pytest.approx(persistence, rel=1e-12)
    assert resumed.metric.get() == pytest.approx(whole.metric.get(), rel=1e-9)


def test_probability_metrics_get_the_probabilities_and_the_baseline_the_label_frequencies(tmp_path):
    from river import metrics

    import streamrnn
    from connectors import NullSink
    from connectors.files import JsonlSource
    from streamrnn.runner import Runner

    labels = ["abc"[i % 3] for i in range(300)]  # told by x
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps({"x": float(i % 3), "y": y}) + "\n" for i, y in enumerate(labels)))
    r = Runner(JsonlSource(str(data)), NullSink(), streamrnn.RecurrentClassifier(hidden_size=4, seed=1), task="classify",
               target="y", metric=metrics.CrossEntropy())
    r.run(handle_signals=False)
    expected, counts = metrics.CrossEntropy(), {}
    for i, y in enumerate(labels):
        total = sum(counts.values())
        if i:  # the model has no class to predict before the first label: neither is scored
            expected.update(y, {k: n / total for k, n in counts.items()})
        counts[y] = counts.get(y, 0) + 1
    assert r.baseline.metric.get() == pytest.approx(expected.get())
    assert 0 < r.metric.get() < r.baseline.metric.get()  # it learnt what x tells


def test_timestamp_gives_the_model_calendar_inputs_and_future_steps_their_own(tmp_path):
    import datetime as dt

    import streamrnn
    from connectors import ListSink
    from connectors.files import CsvSource
    from streamrnn.records import RecordReader
    from streamrnn.runner import Runner

    x, _ = RecordReader("regress", "temp", timestamp_field="ts").read(
        {"ts": "2024-03-01T06:00:00", "temp": 1.0, "load": 2.0})
    assert x == {"load": 2.0, "ts": dt.datetime(2024, 3, 1, 6, tzinfo=dt.timezone.utc)}

    data = write_csv(tmp_path / "s.csv", n=30)  # one event a second
    seen = []

    class Recording(streamrnn.RecurrentForecaster):
        def forecast(self, horizon, xs=None):
            seen.append([x["ts"] for x in xs])
            return super().forecast(horizon, xs)

    Runner(CsvSource(str(data)), ListSink(), Recording(hidden_size=4, seed=0), task="forecast", target="temp",
           features=["load"], timestamp_field="ts", horizon=3).run(handle_signals=False)
    second = dt.timedelta(seconds=1)
    assert seen[-1] == [seen[-1][0], seen[-1][0] + second, seen[-1][0] + 2 * second]


def test_a_date_or_identifier_column_read_as_a_category_is_warned_about(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=50)
    without = cli(*RUN, "--source", f"file:{data}", "--sink", "null:", "--target", "temp")
    assert without.returncode == 0, without.stderr
    assert "field 'ts' looks like a date but is read as a category" in without.stderr
    assert "--timestamp ts" in without.stderr
    given = cli(*RUN, "--source", f"file:{data}", "--sink", "null:", "--target", "temp", "--timestamp", "ts")
    assert given.returncode == 0 and "looks like a date" not in given.stderr

    ids = tmp_path / "ids.jsonl"
    ids.write_text("".join(json.dumps({"id": f"user-{i}", "kind": "ab"[i % 2], "y": float(i % 7)}) + "\n"
                           for i in range(300)))
    result = cli(*RUN, "--source", f"file:{ids}", "--sink", "null:", "--target", "y")
    assert result.returncode == 0, result.stderr
    assert "field 'id' had 101 distinct values in the first" in result.stderr
    assert "field 'kind'" not in result.stderr


def test_a_rerun_never_truncates_its_output_and_a_keyed_rerun_says_where_its_state_is(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=40)
    out = tmp_path / "p.jsonl"
    plain = [*RUN, "--source", f"file:{data}", "--sink", f"file:{out}", "--target", "temp", "--features", "load"]
    assert cli(*plain).returncode == 0
    line = one_line_error(cli(*plain))  # a fresh run over a file that holds predictions
    assert "already holds data" in line and "--overwrite" in line
    assert len(out.read_text().splitlines()) == 40
    assert cli(*plain, "--overwrite").returncode == 0 and len(out.read_text().splitlines()) == 40

    keyed_out = tmp_path / "k.jsonl"
    state = tmp_path / "state"
    keyed = [*RUN, "--source", f"file:{data}", "--sink", f"file:{keyed_out}", "--target", "temp", "--features",
             "load", "--key", "kind", "--state", f"dir:{state}"]
    first = cli(*keyed)
    assert first.returncode == 0 and f"kept in the directory {state}" in first.stderr
    again = cli(*keyed)  # resumes: every event is covered, and the predictions are kept
    assert again.returncode == 0, again.stderr
    assert "events already covered by restored state: 40" in again.stderr
    assert len(keyed_out.read_text().splitlines()) == 40


@pytest.mark.parametrize("proba,expected", [("none", None), ("top-1", 1), ("top-3", 3), ("all", 5)])
def test_classifier_output_carries_the_label_and_the_probabilities_asked_for(tmp_path, proba, expected):
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps({"x": float(i % 5), "y": "abcde"[i % 5]}) + "\n" for i in range(60)))
    out = tmp_path / "p.jsonl"
    result = cli("run", "--task", "classify", "--hidden-size", "4", "--quiet", "--source", f"file:{data}",
                 "--sink", f"file:{out}", "--target", "y", "--proba", proba)
    assert result.returncode == 0, result.stderr
    last = json.loads(out.read_text().splitlines()[-1])
    assert last["prediction"] in "abcde"
    if expected is None:
        assert "proba" not in last
    else:
        assert len(last["proba"]) == expected and last["prediction"] == max(last["proba"], key=last["proba"].get)


def test_a_bad_proba_is_one_line(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=5)
    line = one_line_error(cli(*RUN, "--source", f"file:{data}", "--sink", "null:", "--target", "temp",
                              "--proba", "top-zero"))
    assert "--proba must be none, all or top-K" in line


def test_an_unreachable_broker_is_one_line_after_a_bounded_wait():
    import time

    start = time.monotonic()
    line = one_line_error(cli(*RUN, "--source", "kafka://127.0.0.1:9/in", "--sink", "null:", "--target", "y",
                              "--broker-wait", "1"))
    assert "no Kafka broker answers at 127.0.0.1:9 (waited 1 s)" in line
    assert time.monotonic() - start < 25  # not the clients' own 30 s and more


def test_without_a_terminal_a_run_prints_status_lines(tmp_path):
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps({"ts": 1.7e9 + i, "x": float(i % 3), "y": float(i % 3)}) + "\n"
                            for i in range(40)))
    # paced at 10 events/s: four seconds, status lines every half second
    result = cli("run", "--task", "regress", "--hidden-size", "4", "--source", f"file:{data}", "--sink", "null:",
                 "--target", "y", "--timestamp", "ts", "--speed", "10", "--status-every", "0.5")
    assert result.returncode == 0, result.stderr
    status = [s for s in result.stderr.splitlines() if s.startswith("streamrnn: ") and "events in," in s]
    assert len(status) >= 3, result.stderr
    assert "predicted" in status[-1] and "events/s" in status[-1]


def test_a_checkpoint_of_other_settings_is_refused_and_reset_starts_over(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=40)
    ckpt, out = tmp_path / "m.ckpt", tmp_path / "p.jsonl"
    args = ["run", "--task", "regress", "--quiet", "--source", f"file:{data}", "--sink", f"file:{out}",
            "--target", "temp", "--features", "load", "--checkpoint", str(ckpt)]
    assert cli(*args, "--hidden-size", "4").returncode == 0
    line = one_line_error(cli(*args, "--hidden-size", "8"))
    assert "hidden_size: 4 -> 8" in line and "--reset" in line
    again = cli(*args, "--hidden-size", "8", "--reset")
    assert again.returncode == 0, again.stderr
    assert f"--reset: removed {ckpt}" in again.stderr
    assert "events in: 40  predictions out: 40" in again.stderr  # from the start, not resumed
    assert len(out.read_text().splitlines()) == 40  # the sink replaced, not appended to


def test_metrics_port_serves_prometheus_metrics_while_it_runs(tmp_path):
    import subprocess
    import sys
    import time
    import urllib.request

    from connectors.local_broker import free_port

    rows = [json.dumps({"ts": 1.7e9 + i, "x": float(i % 3), "y": float(i % 3)}) for i in range(60)]
    rows[5] = '{"ts": 1700000005, "x": 1.0}'  # no target
    data = tmp_path / "s.jsonl"
    data.write_text("\n".join(rows) + "\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamrnn.cli", "run", "--task", "regress", "--hidden-size", "4",
                             "--quiet", "--source", f"file:{data}", "--sink", "null:", "--target", "y",
                             "--timestamp", "ts", "--speed", "10", "--metrics-port", str(port)],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, text = time.monotonic() + 120, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                text = ""
            if "streamrnn_metric{" in text and 'reason="missing target field' in text:
                break
            time.sleep(0.2)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln and ln[0] != "#"}
    assert 0 < lines["streamrnn_events_in_total"] < 60  # scraped while it ran
    assert lines["streamrnn_dead_lettered_total{reason=\"missing target field 'y'\"}"] == 1
    assert 'streamrnn_baseline_metric{baseline="persistence",metric="MAE"}' in lines
    assert lines["streamrnn_models"] == 1 and "streamrnn_checkpoint_age_seconds" in lines


def test_the_progress_bar_of_a_file_knows_how_many_events_are_left(tmp_path):
    import streamrnn
    from connectors import NullSink
    from connectors.files import CsvSource
    from streamrnn.runner import Runner

    data = write_csv(tmp_path / "s.csv", n=120)
    ckpt = str(tmp_path / "r.ckpt")

    def runner():
        return Runner(CsvSource(str(data)), NullSink(), streamrnn.RecurrentRegressor(hidden_size=4, seed=0),
                      task="regress", target="temp", features=["load"], checkpoint_path=ckpt)

    first = runner()
    assert first._events_left() == 120
    first.run(max_events=50, handle_signals=False)
    assert runner()._events_left() == 70


def test_log_format_json_gives_status_lines_and_a_summary_as_json(tmp_path):
    rows = [{"ts": 1.7e9 + i, "x": float(i % 3), "y": float(i % 3)} for i in range(30)]
    rows[3] = {"ts": 1.7e9 + 3, "x": 1.0}
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("run", "--task", "regress", "--hidden-size", "4", "--source", f"file:{data}", "--sink", "null:",
                 "--target", "y", "--timestamp", "ts", "--speed", "15", "--status-every", "0.5", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(s) for s in result.stderr.splitlines() if s.startswith("{")]
    assert any("status" in o for o in objects)
    summary = objects[-1]["summary"]
    assert (summary["events_in"], summary["predictions_out"], summary["dead_lettered"]) == (30, 29, 1)
    assert summary["dead_lettered_by_reason"] == {"missing target field 'y'": 1}
    assert summary["metric"]["name"] == "MAE" and summary["baseline"]["name"] == "persistence"
    assert summary["failure"] is None


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_plot_draws_a_predictions_file(tmp_path, task):
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps({"x": float(i % 4), "y": float(i % 4) if task == "forecast" else "abcd"[i % 4]})
                            + "\n" for i in range(120)))
    preds, png = tmp_path / "p.jsonl", tmp_path / "p.png"
    assert cli("run", "--task", task, "--hidden-size", "4", "--quiet", "--source", f"file:{data}",
               "--sink", f"file:{preds}", "--target", "y").returncode == 0
    result = cli("plot", "--predictions", str(preds), "--out", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert ("MAE over the last" if task == "forecast" else "running accuracy") in result.stderr


def test_plot_of_a_file_without_predictions_is_one_line(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"a": 1}\n')
    assert "holds no predictions" in one_line_error(cli("plot", "--predictions", str(bad), "--out",
                                                        str(tmp_path / "x.png")))
    assert "no such file" in one_line_error(cli("plot", "--predictions", str(tmp_path / "nope.jsonl"), "--out",
                                                str(tmp_path / "x.png"))).lower()


def test_broker_start_and_stop_from_the_command_line(tmp_path):
    workdir = tmp_path / "broker"
    started = subprocess.run([sys.executable, "-m", "streamrnn.cli", "broker", "start", "--dir", str(workdir), "--port", "0"],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip()
    assert bootstrap.startswith("127.0.0.1:")
    try:
        again = subprocess.run([sys.executable, "-m", "streamrnn.cli", "broker", "start", "--dir", str(workdir), "--port", "0"],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and again.stdout.strip() == bootstrap and "already runs" in again.stderr
    finally:
        stopped = subprocess.run([sys.executable, "-m", "streamrnn.cli", "broker", "stop", "--dir", str(workdir)],
                                 capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    none = subprocess.run([sys.executable, "-m", "streamrnn.cli", "broker", "stop", "--dir", str(workdir)],
                          capture_output=True, text=True, timeout=60)
    assert none.returncode == 1 and "no broker runs" in none.stderr


def test_a_broker_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(cli("broker", "start", "--dir", str(tmp_path / "b"), "--port", str(port)))
    assert f"port {port} on 127.0.0.1 is in use" in line


def test_a_text_run_reports_bits_per_symbol_beside_the_symbol_frequencies(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 60)
    result = subprocess.run([sys.executable, "-m", "streamrnn.cli", "run", "--source", f"file:{text}", "--sink",
                             "null:", "--task", "classify", "--target", "next", "--embedding-size", "8",
                             "--hidden-size", "16", "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "BitsPerSymbol:" in result.stderr and "the model is better" in result.stderr, result.stderr


def test_publish_copies_records_and_reports_what_it_skipped(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=20)
    with open(data, "a") as f:
        f.write("2024-01-01T01:00:00,1.0\n")  # a row short of fields
    out = tmp_path / "out.jsonl"
    result = cli("publish", "--source", f"file:{data}", "--sink", f"file:{out}", "--key", "kind")
    assert result.returncode == 0, result.stderr
    assert "published 20 records" in result.stderr and "skipped 1: CSV row has 2 fields" in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 20 and records[0]["kind"] == "a" and set(records[0]) == {"ts", "load", "kind", "temp"}
    none = cli("publish", "--source", f"file:{data}", "--sink", "null:", "--key", "sensor")
    assert none.returncode == 1 and "published 0 records" in none.stderr and "no field 'sensor' (20)" in none.stderr


def test_forecasts_carry_their_prediction_intervals(tmp_path):
    data = write_csv(tmp_path / "s.csv", n=300)
    out = tmp_path / "out.jsonl"
    result = cli("run", "--task", "forecast", "--hidden-size", "4", "--quiet", "--source", f"file:{data}",
                 "--sink", f"file:{out}", "--target", "temp", "--horizon", "3", "--interval", "0.9")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["interval"] == [[None, None]] * 3  # nothing known yet: unbounded
    covered = 0
    for r in records[100:]:
        assert len(r["interval"]) == 3
        (lo, hi), first = r["interval"][0], r["forecast"][0]
        assert lo <= first <= hi
        covered += lo <= r["y"] <= hi
    assert 0.8 <= covered / len(records[100:]) <= 0.98
    for flags, message in ((["--interval", "1.5"], "--interval: coverage must be above 0 and at most 0.9796"),
                           # (48 errors per horizon cannot vouch for 99%: refused, not unbounded for ever)
                           (["--interval", "0.99"], "--interval: coverage must be above 0 and at most 0.9796"),
                           (["--interval", "0.9", "--task", "regress"], "--interval is for --task forecast")):
        args = ["run", "--task", "forecast", "--hidden-size", "4", "--quiet", "--source", f"file:{data}",
                "--sink", "null:", "--target", "temp", *flags]
        if "regress" in flags:
            args[2] = "regress"
            args = args[:-2]
        assert one_line_error(cli(*args)).startswith(f"streamrnn: error: {message}")
