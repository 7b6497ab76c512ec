"""What the ``streamrnn`` commands do (:mod:`streamrnn.cli` parses their arguments): build the
model, the metric, the connectors and the state store of a run from the settings, run it and
report; ``demo``, ``plot``, ``record`` and ``publish``."""

from __future__ import annotations

import collections
import functools
import json
import os
import sys


class UsageError(ValueError):
    """A setting the user can fix: reported as one line, exit status 2."""


def _detector(args):
    """``--task anomaly``'s model: the detector takes the forecaster's network settings."""
    import streamrnn

    unused = [flag for flag, value, default in (("--num-layers", args.num_layers, 1), ("--optimizer", args.optimizer,
              "adam"), ("--update-every", args.update_every, 1), ("--embedding-size", args.embedding_size, None))
              if value != default]
    if unused:
        raise UsageError(f"{', '.join(unused)}: not a setting of --task anomaly's detector")
    params = dict(cell=args.cell, hidden_size=args.hidden_size, truncation=args.truncation, dtype=args.dtype,
                  seed=args.seed)
    return streamrnn.RecurrentAnomalyDetector(**params, **({} if args.lr is None else {"lr": args.lr}))


def build_model(task, args):
    import streamrnn

    params = dict(cell=args.cell, hidden_size=args.hidden_size, num_layers=args.num_layers,
                  truncation=args.truncation, update_every=args.update_every, optimizer=args.optimizer,
                  embedding_size=getattr(args, "embedding_size", None), dtype=getattr(args, "dtype", "float32"),
                  seed=args.seed)
    if args.lr is not None:
        params["lr"] = args.lr
    if getattr(args, "ngram_order", 0):
        if task != "classify":
            raise UsageError("--ngram-order is for --task classify (the n-gram rows add to a softmax)")
        params.update(ngram_order=args.ngram_order, ngram_buckets=args.ngram_buckets, ngram_lr=args.ngram_lr)
    cls = {"regress": streamrnn.RecurrentRegressor, "classify": streamrnn.RecurrentClassifier,
           "forecast": streamrnn.RecurrentForecaster, "anomaly": None}[task]
    try:
        return _detector(args) if task == "anomaly" else cls(**params)
    except ValueError as e:
        raise UsageError(str(e)) from None


def build_metric(task, name, text=False):
    """The metric named (a class of streamrnn.metrics or river.metrics), or the task's default: MAE,
    Accuracy, or bits per symbol for a next-symbol model of a text."""
    from river import metrics

    from . import metrics as own

    if task == "anomaly":  # no labels to score against
        if name:
            raise UsageError("--task anomaly has no labels to score: leave out --metric")
        return None
    default = ("BitsPerSymbol" if text else "Accuracy") if task == "classify" else "MAE"
    name = name or default
    cls = getattr(own, name, None) if name in own.__all__ else getattr(metrics, name, None)
    if not (isinstance(cls, type) and issubclass(cls, metrics.base.Metric)):
        raise UsageError(f"unknown metric {name!r}: use a class name from river.metrics, or BitsPerSymbol")
    try:
        return cls()
    except TypeError:
        raise UsageError(f"the metric {name} needs parameters; the command line takes metrics without") from None


def _csv_list(text):
    return [s for s in (text or "").split(",") if s]


def _transaction_settings(options: dict) -> tuple[str | None, int | None]:
    """Take the transactional producer's own settings out of the shared client settings (no other
    producer may get them)."""
    tid = tout = None
    for name in ("transactional.id", "transactional_id"):
        tid = options.pop(name, tid)
    for name in ("transaction.timeout.ms", "transaction_timeout_ms"):
        tout = options.pop(name, tout)
    return tid, tout


def _check_exactly_once(args, timeout_ms):
    """Refuse, before anything opens, a job that cannot be exactly-once."""
    from connectors.kafka import parse_kafka_uri

    if not args.source.startswith("kafka://"):
        raise UsageError("--guarantee exactly-once needs a Kafka source (its offsets commit in the transaction)")
    outputs = [(flag, uri) for flag, uri in (("--sink", args.sink), ("--dead-letter", args.dead_letter),
                                              ("--alerts", args.alerts)) if uri]
    servers = parse_kafka_uri(args.source)[0]
    for flag, uri in outputs:
        if not uri.startswith("kafka://") and uri not in ("null:", "null"):
            raise UsageError(f"--guarantee exactly-once writes only to Kafka topics: {flag} is not one "
                             "(a file cannot join a Kafka transaction)")
        if uri.startswith("kafka://") and parse_kafka_uri(uri)[0] != servers:
            raise UsageError(f"--guarantee exactly-once needs {flag} on the source's cluster ({servers}): "
                             "a transaction spans one cluster")
    if args.key and _state_spec(args) != "kafka":
        raise UsageError("--guarantee exactly-once keeps per-key models in the changelog topic: use --state kafka")
    if args.checkpoint_interval * 1000 * 2 > timeout_ms:
        raise UsageError(f"--checkpoint-interval {args.checkpoint_interval:g} s is over half of transaction.timeout.ms "
                         f"({timeout_ms} ms): the broker would abort transactions before they commit")


def open_transaction(args, options, tid, timeout_ms):
    """``--guarantee exactly-once``: the transactional producer every Kafka output of this worker
    writes through (see :mod:`connectors.transaction`)."""
    import uuid

    from connectors.kafka import parse_kafka_uri
    from connectors.uri import kafka_client

    # a fresh id fences nothing; a stable one per worker (transactional.id in --kafka-config) lets
    # a restarted worker abort the transaction its killed predecessor left open at once, instead of
    # read_committed consumers waiting for the broker's timeout
    tid = str(tid or f"streamrnn-{args.group}-{uuid.uuid4().hex[:12]}")
    if kafka_client(args.kafka_client) == "confluent":
        from connectors.kafka_confluent import ConfluentTransaction as cls
    else:
        from connectors.kafka import KafkaTransaction as cls
    return cls(parse_kafka_uri(args.source)[0], tid, client_options=options, timeout_ms=timeout_ms)


def cmd_run(args):
    from .runner import DEAD_LETTER_HEAD

    try:
        runner, closers = _build_run(args)
    except ValueError as e:  # a setting, a URI, an option: before anything ran
        if args.debug:
            raise
        raise UsageError(str(e)) from None
    keys = ""
    if args.metrics_port is not None:
        try:
            from .exporter import serve
        except ImportError:
            raise UsageError('--metrics-port needs prometheus_client: pip install "streamrnn[metrics]"') from None
        try:
            serve(runner, args.metrics_port, args.metrics_address)
        except OSError as e:
            raise UsageError(f"cannot serve metrics on {args.metrics_address}:{args.metrics_port}: {e.strerror}") from None
    try:
        stats = runner.run(max_events=args.max_events)
        if args.key:  # before the source closes and gives its partitions back
            where = f"directory {_state_dir(args)}" if _state_dir(args) else f"topic {args.group}-models-changelog"
            keys = (f"keys: {sum(len(m) for m in runner.partitions.values()):,} models (kept in the {where}) in "
                    f"{len(runner.partitions)} partitions; restored at markers "
                    f"{ {f'{t}/{p}': m for (t, p), m in sorted(runner.restored.items())} }; "
                    f"events already covered by restored state: {runner.covered:,}")
    finally:
        for close in closers:
            close()
    failure = runner.failure(args.max_dead_letter_ratio)
    if args.log_format == "json":
        summary = runner.status()
        if args.task == "anomaly":
            summary["alerts"] = runner.alerts_out
        summary.update(failure=failure, truncated_dead_letters=runner.truncated_dead_letters,
                       refused_state_records=len(getattr(runner, "rejected", [])))
        if runner.transaction is not None:
            summary["transactions_committed"] = runner.transaction.commits
        if args.key:
            summary["models"] = runner.model_count()
            summary["events_covered_by_restored_state"] = runner.covered
        print(json.dumps({"summary": summary}), file=sys.stderr)
        return 1 if failure or not stats.balanced else 0
    print(stats.summary(runner.metric_report()), file=sys.stderr)
    if args.task == "anomaly":
        print(f"alerts: {runner.alerts_out:,} events scored {runner.threshold:g} or more", file=sys.stderr)
    report = runner.dead_letter_report()
    if report:
        print(report, file=sys.stderr)
    if keys:
        print(keys, file=sys.stderr)
    if runner.transaction is not None:
        print(f"exactly-once: {runner.transaction.commits:,} transactions committed "
              f"(transactional.id {runner.transaction.transactional_id})", file=sys.stderr)
    if runner.truncated_dead_letters:
        print(f"{runner.truncated_dead_letters:,} dead letters were too large for the dead-letter sink: their first "
              f"{DEAD_LETTER_HEAD // 1024} KiB were written, with the header streamrnn.truncated", file=sys.stderr)
    rejected = getattr(runner, "rejected", [])
    if rejected:
        print(f"refused {len(rejected):,} state records on restore (never loaded; the first: {rejected[0]})",
              file=sys.stderr)
    if failure:
        print(f"streamrnn: error: {failure}", file=sys.stderr)
        return 1
    return 0 if stats.balanced else 1


def _print_status(as_json, runner, rate):
    if as_json:
        print(json.dumps({"status": runner.status(rate)}), file=sys.stderr, flush=True)
    else:
        print(runner.status_line(rate), file=sys.stderr, flush=True)


def _state_spec(args) -> str:
    """Where a keyed run keeps its models: ``--state``, by default the changelog topic for a Kafka
    source and ``dir:streamrnn-state`` otherwise."""
    return args.state or ("kafka" if args.source.startswith("kafka://") else "dir:streamrnn-state")


def _state_dir(args):
    """The directory of a keyed run's ``--state dir:`` store, or None."""
    spec = _state_spec(args) if args.key else ""
    return spec[4:] if spec.startswith("dir:") else None


def _resumes(args) -> bool:
    """Whether this run goes on from saved state (a checkpoint file, or a keyed run's directory
    store that holds records), and so appends to a file sink instead of replacing it. A file sink
    that holds data is never replaced silently: that takes --overwrite."""
    state_dir = _state_dir(args)
    resumes = bool(args.checkpoint and os.path.exists(args.checkpoint)) or bool(
        state_dir and os.path.isdir(state_dir) and any(os.scandir(state_dir)))
    path = args.sink[len("file:"):] if args.sink.startswith("file:") else args.sink
    if (not resumes and not args.overwrite and "://" not in args.sink and args.sink not in ("-", "null:", "null")
            and os.path.isfile(path) and os.path.getsize(path) > 0):
        raise UsageError(f"the sink {path} already holds data and this run starts afresh: give --overwrite to "
                         "replace it, or another --sink")
    return resumes


def _wait_for_brokers(args):
    """Every Kafka cluster the run names answers, within --broker-wait seconds, or the run stops
    with one line naming it (the clients would retry for 30 s, then fail with a traceback)."""
    from connectors.kafka import parse_kafka_uri, wait_for_broker

    uris = [u for u in (args.source, args.sink, args.dead_letter, args.alerts) if u and u.startswith("kafka://")]
    for servers in dict.fromkeys(parse_kafka_uri(u)[0] for u in uris):
        def say():
            print(f"streamrnn: waiting up to {args.broker_wait:g} s for a Kafka broker at {servers}", file=sys.stderr)

        if not wait_for_broker(servers, args.broker_wait, say):
            raise UsageError(f"no Kafka broker answers at {servers} (waited {args.broker_wait:g} s): is it running, "
                             "and is the address right? (--broker-wait sets how long to wait)")


def _reset(args):
    """--reset: forget the saved state this run would resume from (and so replace its file sink)."""
    import shutil

    if args.key and _state_spec(args) == "kafka":
        raise UsageError(f"--reset cannot delete a Kafka changelog: delete the topic {args.group}-models-changelog "
                         f"and the group {args.group}'s offsets with your Kafka tools, or use another --group")
    removed = [p for p in ([args.checkpoint, f"{args.checkpoint}.pending"] if args.checkpoint else [])
               if os.path.exists(p)]
    for path in removed:
        os.remove(path)
    state_dir = _state_dir(args)
    if state_dir and os.path.isdir(state_dir):
        shutil.rmtree(state_dir)
        removed.append(state_dir + "/")
    args.overwrite = True
    print(f"streamrnn: --reset: removed {', '.join(removed) if removed else 'nothing (no saved state)'}",
          file=sys.stderr)


def _check_task(args):
    if args.task == "anomaly":
        if args.target is not None:
            raise UsageError("--task anomaly scores whole events: every numeric field is a feature; leave out --target")
        if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
            raise UsageError(f"--threshold must be in (0, 1], got {args.threshold:g}")
    elif args.target is None:
        raise UsageError(f"--task {args.task} needs --target, the field to predict")
    elif args.threshold is not None or args.alerts:
        raise UsageError("--threshold and --alerts are for --task anomaly")
    if args.interval is not None and args.task != "forecast":
        raise UsageError("--interval is for --task forecast")
    if args.interval is not None:
        from .forecaster import check_coverage  # (the forecaster's own rule: one place)
        try:
            check_coverage(args.interval)
        except ValueError as e:
            raise UsageError(f"--interval: {e}; e.g. 0.9") from None


def _build_run(args):
    """The runner of ``streamrnn run`` and what to close after it, in order."""
    from connectors import open_sink, open_source
    from connectors.uri import is_text_source
    from connectors.kafka_settings import client_options_from_env, parse_option, read_client_config
    from connectors.transaction import TRANSACTION_TIMEOUT_MS

    from . import persist
    from .runner import Runner

    options = client_options_from_env()
    if args.kafka_config:
        options.update(read_client_config(args.kafka_config))
    for opt in args.kafka_option or []:
        k, v = parse_option(opt)
        options[k] = v
    if args.checkpoint_interval is None:  # output waits for the commit under exactly-once, as in Kafka Streams
        args.checkpoint_interval = 1.0 if args.guarantee == "exactly-once" else 30.0
    _check_task(args)
    if args.reset:
        _reset(args)
    model = build_model(args.task, args)  # settings errors first: before a connector opens
    metric = build_metric(args.task, args.metric, text=is_text_source(args.source))
    tid, timeout_ms = _transaction_settings(options)  # no other producer may get them
    timeout_ms = int(timeout_ms or TRANSACTION_TIMEOUT_MS)
    exactly_once = args.guarantee == "exactly-once"
    if exactly_once:
        _check_exactly_once(args, timeout_ms)
    _wait_for_brokers(args)
    transaction = open_transaction(args, options, tid, timeout_ms) if exactly_once else None
    key = persist.state_key(args.state_key_file)
    client = args.kafka_client
    kafka_kw = {} if transaction is None else {"read_committed": True}
    source = open_source(args.source, group_id=args.group, client_options=options, idle_timeout=args.idle_timeout,
                         timestamp_field=args.timestamp, speed=args.speed, kafka_client_name=client, **kafka_kw)
    sink = open_sink(args.sink, client_options=options, append=_resumes(args), kafka_client_name=client,
                     transaction=transaction)
    dead, alerts = (open_sink(uri, client_options=options, append=True, kafka_client_name=client,
                              transaction=transaction) if uri else None for uri in (args.dead_letter, args.alerts))
    common = dict(task=args.task, target=args.target, features=_csv_list(args.features),
                  categorical=_csv_list(args.categorical), timestamp_field=args.timestamp, dead_letter=dead,
                  metric=metric, checkpoint_every=args.checkpoint_every,
                  checkpoint_interval=args.checkpoint_interval, max_message_bytes=args.max_message_bytes,
                  horizon=args.horizon, progress=not args.quiet and sys.stderr.isatty(), transaction=transaction,
                  proba=args.proba, status_every=args.status_every, threshold=args.threshold, alerts=alerts,
                  interval=args.interval,
                  # no terminal for a progress bar (a service's log): a status line now and then
                  on_status=None if args.quiet or sys.stderr.isatty() or not args.status_every
                  else functools.partial(_print_status, args.log_format == "json"))
    store = None
    if args.key:
        from .keyed import KeyedRunner

        store = open_store(args, options, key, transaction)
        runner = KeyedRunner(source, sink, model, key_field=args.key, store=store,
                             max_hot_models=args.max_hot_models, state_key=key, **common)
    else:
        runner = Runner(source, sink, model, checkpoint_path=args.checkpoint, state_key=key, **common)
    closers = [c.close for c in (sink, dead, alerts, source, store, transaction) if c is not None]
    return runner, closers


def open_store(args, options, key=None, transaction=None):
    """``--state kafka`` (a compacted changelog topic, the default for Kafka sources) or
    ``--state dir:PATH``."""
    from connectors.uri import kafka_client

    from connectors.changelog import ChangelogStore, ConfluentChangelogStore

    from .state import DirectoryStore

    spec = _state_spec(args)
    if spec == "kafka":
        from connectors.kafka import parse_kafka_uri

        servers, topic = parse_kafka_uri(args.source)
        cls = ConfluentChangelogStore if kafka_client(args.kafka_client) == "confluent" else ChangelogStore
        return cls(servers, f"{args.group}-models-changelog", client_options=options, transaction=transaction)
    if spec.startswith("dir:"):
        return DirectoryStore(spec[4:], key=key)
    raise UsageError(f"--state must be 'kafka' or 'dir:PATH', got {spec!r}")


def cmd_demo(args):
    from connectors import open_sink
    from connectors.river_source import RiverDatasetSource

    from .runner import Runner

    print(f"streamrnn demo: {args.cell.upper()}-{args.hidden_size} learning river.datasets.{args.dataset} "
          f"online, predicting each event before learning it (the first run compiles the Numba kernels, "
          f"about a minute; they are cached after that)", file=sys.stderr)
    source = RiverDatasetSource(args.dataset)
    sink = open_sink(args.sink)
    model = build_model(args.task, args)
    runner = Runner(source, sink, model, task=args.task, target="y", metric=build_metric(args.task, args.metric),
                    progress=not args.quiet and sys.stderr.isatty())
    stats = runner.run()
    sink.close()
    print(stats.summary(runner.metric_report()))
    return 0 if stats.balanced else 1


def cmd_plot(args):
    import importlib.util

    from .plot import plot

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError('streamrnn plot needs matplotlib: pip install "streamrnn[plot]"')
    try:
        shown = plot(args.predictions, args.out, last=args.last, title=args.title)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {args.out}: predictions against the truth, and the {shown}", file=sys.stderr)
    return 0


def cmd_record(args):
    from connectors import open_source
    from connectors.files import RecordingSink
    from connectors.kafka_settings import client_options_from_env

    source = open_source(args.source, group_id=args.group, client_options=client_options_from_env(),
                         idle_timeout=args.idle_timeout)
    n = 0
    with RecordingSink(args.out) as out:
        for event in source:
            if event is not None:
                out.write_event(event)
                n += 1
    source.close()
    print(f"recorded {n:,} events to {args.out}", file=sys.stderr)
    return 0


def cmd_publish(args):
    """Copy the records of a file (or any source) to a sink, e.g. a Kafka topic, as JSON messages:
    what a producer of the real stream would write. A recording's messages go byte for byte."""
    from connectors import open_sink, open_source
    from connectors.base import DecodeError
    from connectors.files import RecordingSource
    from connectors.kafka_settings import client_options_from_env
    from connectors.uri import is_text_source

    if is_text_source(args.source):
        raise UsageError(f"{args.source}: publish copies records (.csv, .jsonl, .rec), not text")
    source = open_source(args.source, timestamp_field=args.timestamp, speed=args.speed)
    sent, skipped = 0, collections.Counter()
    with open_sink(args.sink, client_options=client_options_from_env()) as sink:
        for event in source:
            if isinstance(source, RecordingSource):
                sink.write_raw(event.value, key=event.key, headers=event.headers)
                sent += 1
                continue
            try:
                record = source.decode(event)
            except DecodeError as e:
                skipped[str(e)[:80]] += 1
                continue
            if args.key is not None and args.key not in record:
                skipped[f"no field {args.key!r}"] += 1
                continue
            sink.write(record, key=None if args.key is None else str(record[args.key]).encode())
            sent += 1
    source.close()
    reasons = "; ".join(f"{reason} ({n:,})" for reason, n in skipped.most_common(3))
    print(f"published {sent:,} records to {args.sink}" + (f"; skipped {sum(skipped.values()):,}: {reasons}"
                                                          if skipped else ""), file=sys.stderr)
    return 0 if sent else 1
