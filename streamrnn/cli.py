"""The ``streamrnn`` command line: ``demo``, ``run``, ``plot``, ``publish``, ``record`` and ``broker``
(their arguments; :mod:`streamrnn.commands` does what they say)."""

from __future__ import annotations

import argparse
import os
import sys

from .commands import (  # noqa: F401 (build_model, build_metric: the commands' own builders, for tests and tools)
    UsageError, build_metric, build_model, cmd_demo, cmd_plot, cmd_publish, cmd_record, cmd_run)

EPILOG = """\
URIs:
  kafka://HOST:PORT[,HOST:PORT]/TOPIC   Kafka topic (kafka:///TOPIC reads the servers from
                                        STREAMRNN_KAFKA_BOOTSTRAP_SERVERS)
  file:PATH                             .csv, .jsonl (.json, .ndjson), .txt, or .rec (a recording)
  -                                     JSON Lines on stdin (source) or stdout (sink)
  river:NAME                            a dataset shipped with River, e.g. river:TrumpApproval
  null:                                 discard (sink)

Kafka client settings pass through to kafka-python with --kafka-option KEY=VALUE (repeatable),
e.g. --kafka-option security_protocol=SASL_SSL. Credentials never go on a command line (every user
sees it): put them in a properties file given with --kafka-config FILE
  security.protocol=SASL_SSL
  sasl.mechanism=PLAIN
  sasl.username=me
  sasl.password=...
or in STREAMRNN_KAFKA_<KEY> environment variables (STREAMRNN_KAFKA_SASL_PLAIN_PASSWORD=...).

Example, live regression from one topic to another, resumable:
  streamrnn run --source kafka://127.0.0.1:9092/sensors --sink kafka://127.0.0.1:9092/predictions \\
      --task regress --target temperature --features load,fan --group sensors-lstm \\
      --dead-letter kafka://127.0.0.1:9092/sensors-dlq --checkpoint /var/lib/streamrnn/sensors.ckpt
"""


def _model_args(p):
    from . import cells

    g = p.add_argument_group("model")
    g.add_argument("--cell", default="lstm", choices=list(cells.CELLS),
                   help="; ".join(f"{c.name}: {c.summary}" for c in cells.CELLS.values()))
    g.add_argument("--hidden-size", type=int, default=32)
    g.add_argument("--num-layers", type=int, default=1)
    g.add_argument("--truncation", type=int, default=16, help="steps the gradient flows back (k2)")
    g.add_argument("--update-every", type=int, default=1, help="events per optimizer step (k1)")
    g.add_argument("--optimizer", default="adam", choices=["adam", "rmsprop", "sgd"])
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: the estimator's)")
    g.add_argument("--embedding-size", type=int, default=None,
                   help="categorical fields go through a learned embedding of this size (default: one-hot)")
    g.add_argument("--ngram-order", type=int, default=0,
                   help="classify: direct n-gram connections of orders 1..N over the first categorical "
                        "field (needs --embedding-size; text streams: 5)")
    g.add_argument("--ngram-buckets", type=int, default=1 << 16, help="rows of the n-gram hash table")
    g.add_argument("--ngram-lr", type=float, default=0.5, help="SGD step of the n-gram rows")
    g.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    g.add_argument("--seed", type=int, default=0)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="streamrnn", description="Recurrent networks that learn online on live streams.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    ap.add_argument("--version", action="version", version=f"streamrnn {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on a dataset bundled with River (no Kafka)",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    demo.add_argument("--dataset", default="ChickWeights", help="a river.datasets class shipped with River")
    demo.add_argument("--task", default="forecast", choices=["regress", "classify", "forecast"])
    demo.add_argument("--sink", default="null:", help="where the predictions go (URI)")
    demo.add_argument("--metric", default=None)
    demo.add_argument("--quiet", action="store_true")
    _model_args(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="learn and predict on a stream: source -> model -> sink",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = run.add_argument_group("streams")
    io.add_argument("--source", required=True, help="input URI")
    io.add_argument("--sink", default="-", help="predictions URI (default: stdout)")
    io.add_argument("--dead-letter", default=None, help="URI for events that cannot be used, with the reason")
    io.add_argument("--group", default=os.environ.get("STREAMRNN_GROUP", "streamrnn"), help="Kafka consumer group")
    io.add_argument("--kafka-option", action="append", metavar="KEY=VALUE",
                    help="Kafka client setting (not for secrets: a command line is visible to every user; "
                         "use --kafka-config or STREAMRNN_KAFKA_<KEY>)")
    io.add_argument("--kafka-config", metavar="FILE", default=None,
                    help="Kafka client properties file (key=value lines, '#' comments; Java-style dotted "
                         "names or kafka-python's): the place for credentials")
    io.add_argument("--kafka-client", default=None, choices=["kafka-python", "confluent"],
                    help="Kafka client library: kafka-python (default) or confluent (librdkafka: about 5x "
                         "the throughput; pip install confluent-kafka). Env: STREAMRNN_KAFKA_CLIENT")
    io.add_argument("--broker-wait", type=float, default=30.0,
                    help="seconds to wait for the Kafka brokers to answer before giving up (default 30)")
    io.add_argument("--idle-timeout", type=float, default=None,
                    help="stop after this many seconds without a Kafka message or rebalance while "
                         "partitions are assigned (default: run forever)")
    io.add_argument("--timestamp", default=None,
                    help="timestamp field: copied to predictions, gives the model calendar inputs, paces --speed")
    io.add_argument("--speed", type=float, default=None, help="replay files at this multiple of real time")
    io.add_argument("--max-message-bytes", type=int, default=1_000_000)
    io.add_argument("--max-events", type=int, default=None)
    io.add_argument("--max-dead-letter-ratio", type=float, default=0.5,
                    help="exit with status 1 if more than this share of the events was dead-lettered (a run "
                         "that predicts nothing always does)")
    task = run.add_argument_group("task")
    task.add_argument("--task", required=True, choices=["regress", "classify", "forecast", "anomaly"])
    task.add_argument("--target", default=None, help="the field to predict (every task but anomaly)")
    task.add_argument("--features", default=None, help="comma-separated numeric fields (default: all others)")
    task.add_argument("--categorical", default=None, help="comma-separated categorical fields")
    task.add_argument("--horizon", type=int, default=1, help="forecast: steps per prediction")
    task.add_argument("--interval", type=float, default=None, metavar="COVERAGE",
                      help="forecast: write a prediction interval of this coverage (e.g. 0.9) with each forecast")
    task.add_argument("--proba", default="top-3", metavar="{none,all,top-K}",
                      help="classify: the class probabilities written beside the label (default: the top 3)")
    task.add_argument("--metric", default=None, help="river.metrics class (default MAE, or Accuracy)")
    task.add_argument("--threshold", type=float, default=None,
                      help="anomaly: the score of an alert (default 0.25: a tail probability of 1e-4)")
    task.add_argument("--alerts", default=None, metavar="URI", help="anomaly: where the alerts go too")
    keyed = run.add_argument_group("one model per key (scale out by starting the same command N times)")
    keyed.add_argument("--key", default=None, metavar="FIELD",
                       help="one model per value of FIELD ('@key': the Kafka message key); the key is "
                            "copied to each prediction")
    keyed.add_argument("--state", default=None,
                       help="where per-key models live: 'kafka' (compacted changelog topic <group>-models-"
                            "changelog; default for Kafka sources) or 'dir:PATH'")
    keyed.add_argument("--max-hot-models", type=int, default=10_000,
                       help="live models per worker; colder ones are kept serialised")
    state = run.add_argument_group("state")
    state.add_argument("--checkpoint", default=None, help="checkpoint file: loaded on start, written as it runs")
    state.add_argument("--reset", action="store_true",
                       help="start over: delete the --checkpoint file (or a keyed run's state directory) and "
                            "replace the file sink")
    state.add_argument("--overwrite", action="store_true",
                       help="replace a sink file that already holds data (a resumed run appends to it)")
    state.add_argument("--checkpoint-every", type=int, default=10_000, help="events between checkpoints")
    state.add_argument("--checkpoint-interval", type=float, default=None,
                       help="seconds between checkpoints (default 30; 1 with --guarantee exactly-once, where "
                            "output is visible when its transaction commits)")
    state.add_argument("--guarantee", default="at-least-once", choices=["at-least-once", "exactly-once"],
                       help="at-least-once: after a crash, the events since the last checkpoint are predicted "
                            "again (duplicates); exactly-once: predictions, dead letters, per-key state and "
                            "offsets commit in one Kafka transaction per checkpoint, and read_committed "
                            "consumers see one prediction per input offset (Kafka source and sinks)")
    state.add_argument("--state-key-file", default=None, metavar="FILE",
                       help="sign checkpoints and stored models with the key in FILE (HMAC-SHA256) and refuse "
                            "any that are not signed with it (env: STREAMRNN_STATE_KEY)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or status lines")
    run.add_argument("--metrics-port", type=int, default=None,
                     help="serve Prometheus metrics on this port (/metrics): events, dead letters by reason, the "
                          "metric and its baseline, skipped updates, checkpoint age")
    run.add_argument("--metrics-address", default="127.0.0.1", help="address of --metrics-port (0.0.0.0: every "
                     "interface)")
    run.add_argument("--log-format", default="text", choices=["text", "json"],
                     help="status lines and the final summary as text or as one JSON object each (on stderr)")
    run.add_argument("--status-every", type=float, default=10.0,
                     help="without a terminal: print a status line every so many seconds (0: never)")
    run.add_argument("--debug", action="store_true", help="show the traceback of an error")
    _model_args(run)
    run.set_defaults(func=cmd_run)

    pl = sub.add_parser("plot", help="draw a predictions file (JSON Lines of streamrnn run) as a PNG")
    pl.add_argument("--predictions", required=True, help="the .jsonl a run wrote with --sink file:PATH.jsonl")
    pl.add_argument("--out", required=True, help="the PNG to write")
    pl.add_argument("--last", type=int, default=None, help="only the last N predictions")
    pl.add_argument("--title", default=None)
    pl.set_defaults(func=cmd_plot)

    rec = sub.add_parser("record", help="record a Kafka topic to a .rec file, to replay it byte for byte")
    rec.add_argument("--source", required=True)
    rec.add_argument("--out", required=True)
    rec.add_argument("--group", default="streamrnn-recorder")
    rec.add_argument("--idle-timeout", type=float, default=5.0)
    rec.set_defaults(func=cmd_record)

    pub = sub.add_parser("publish", help="copy a file's records to a Kafka topic (or any sink) as JSON messages")
    pub.add_argument("--source", required=True, help="records to copy: file:PATH (.csv, .jsonl, .rec), river:NAME")
    pub.add_argument("--sink", required=True, help="where to: kafka://HOST:PORT/TOPIC, file:PATH, -")
    pub.add_argument("--key", default=None, metavar="FIELD", help="the message key: the value of this field")
    pub.add_argument("--timestamp", default=None, help="timestamp field, to pace --speed")
    pub.add_argument("--speed", type=float, default=None, help="send at this multiple of real time")
    pub.set_defaults(func=cmd_publish)

    from connectors import local_broker

    broker = sub.add_parser("broker", help="a development Kafka broker on this machine (single node, KRaft)",
                            description="A single-node Apache Kafka broker (KRaft) on 127.0.0.1 for trying the "
                                        "live loop: jars from Maven Central (needs java 17+ and mvn), no "
                                        "replication, no security. Not for production.")
    local_broker.add_commands(broker.add_subparsers(dest="cmd", required=True))
    broker.set_defaults(func=local_broker.run_command)

    args = ap.parse_args(argv)
    from connectors.transaction import TransactionFailed

    from .persist import StateError

    try:
        return args.func(args)
    except (UsageError, StateError, FileNotFoundError, local_broker.BrokerError) as e:  # one line they can act on
        if getattr(args, "debug", False):
            raise
        print(f"streamrnn: error: {e}", file=sys.stderr)
        return 2
    except TransactionFailed as e:
        if getattr(args, "debug", False):
            raise
        print(f"streamrnn: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
