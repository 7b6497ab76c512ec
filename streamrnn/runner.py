"""The streaming job: source -> decode -> model -> sink, prequentially, with nothing lost.

For every event the runner decodes the record, extracts the target and the features, predicts,
learns (predict first: the prediction never saw its own target), and writes the prediction. An
event that cannot be decoded or read, or that the model rejects, goes to the dead-letter sink
with the reason and its original bytes, and the stream goes on with the model untouched. So at
any time ``events_in == predictions_out + dead_lettered``.

Checkpoints make restarts exact: the sinks are flushed, the model (with the positions it has
consumed and the running counts) is written atomically, and only then are the source offsets
committed. On start, a checkpoint is loaded and the source seeks past what it covers.
SIGINT/SIGTERM stop the loop after the current event and write a last checkpoint.

With a ``transaction`` (``--guarantee exactly-once``, :mod:`connectors.transaction`) a checkpoint
is a Kafka transaction: the predictions and dead letters since the last one and the consumed
offsets commit together, or not at all. A checkpoint file then takes two steps: it is written
beside the old one as ``PATH.pending`` before the commit, and replaces it after. On start, a
pending file is kept only if the group's committed offsets show that its transaction committed.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import signal
import time

from connectors.base import DecodeError, Event, Sink, Source

from . import checkpoint as checkpoint_file
from .baseline import Baseline
from .errors import BadInput
from .records import RecordReader
from .report import RunReport, RunStats

log = logging.getLogger(__name__)

DEAD_LETTER_HEAD = 64 * 1024  # bytes of a dead letter kept when the sink refuses the whole message


class NonFinitePrediction(BadInput):
    """The model predicted a value that is not finite (it did not learn from the event)."""


def _proba_top(spec: str) -> int | None:
    if spec == "all":
        return None
    if spec == "none":
        return 0
    k = spec[4:] if spec.startswith("top-") else ""
    if not k.isdigit() or int(k) < 1:
        raise ValueError(f"--proba must be none, all or top-K (K a positive integer), got {spec!r}")
    return int(k)


class Runner(RunReport):
    """Run ``model`` prequentially over ``source``, writing predictions to ``sink``.

    Parameters
    ----------
    source, sink
        Connectors (see :mod:`connectors`).
    model
        A streamrnn (or any River) regressor, classifier or forecaster, matching ``task``.
    task
        ``"regress"``, ``"classify"`` or ``"forecast"``.
    target
        The field holding the target.
    features, categorical
        Numeric and categorical feature fields (default: every other field).
    key_field
        A field copied to each prediction (and, for per-key models, choosing the model).
    dead_letter
        A sink for events that cannot be used (default: discarded, but counted).
    metric
        A River metric updated with each prediction before learning.
    checkpoint_path
        Where to keep the checkpoint; loaded on start when it exists.
    checkpoint_every, checkpoint_interval
        Write a checkpoint every so many events, and at least every so many seconds.
    max_message_bytes
        Larger messages are dead-lettered unread.
    horizon
        Forecast task: how many steps each prediction covers.
    progress
        Show a progress bar with events/s and the metric.
    state_key
        HMAC key of the checkpoint (None: checksummed only).
    proba
        Classify task: which class probabilities each prediction carries beside the label:
        ``"none"``, ``"all"``, or ``"top-K"`` (the K likeliest; the default is the top 3).
    on_status, status_every
        ``on_status(runner, events_per_second)`` every ``status_every`` seconds while the run goes
        on (for logs, where there is no progress bar: see :meth:`status_line`, :meth:`status`).
    transaction
        Exactly-once output: a :class:`connectors.transaction.Transaction` that the Kafka sinks
        write into, committed with the consumed offsets at every checkpoint.
    threshold, alerts
        Anomaly task: the score at which an event is an alert (its record says ``"alert": true``),
        and a sink that gets the records of the alerts too.
    interval
        Forecast task: the coverage of the prediction interval each record carries, ``"interval"``:
        ``[lower, upper]`` per step (null for an unbounded end); None for none.
    """

    def __init__(self, source: Source, sink: Sink, model, task: str, target: str, features=None,
                 categorical=None, key_field=None, timestamp_field=None, dead_letter: Sink | None = None,
                 metric=None, checkpoint_path=None, checkpoint_every=10_000, checkpoint_interval=30.0,
                 max_message_bytes=1_000_000, horizon=1, progress=False, state_key=None, transaction=None,
                 proba="top-3", on_status=None, status_every=10.0, threshold=None, alerts: Sink | None = None,
                 interval=None):
        self.source = source
        self.sink = sink
        self.model = model
        self.task = task
        self.reader = RecordReader(task, target, features, categorical, exclude=(key_field,),
                                   timestamp_field=timestamp_field)
        self.key_field = key_field
        self.timestamp_field = timestamp_field
        self.dead_letter = dead_letter
        self.alerts = alerts
        self.threshold = threshold
        self.alerts_out = 0  # events at or above the threshold, this run
        if task == "anomaly" and threshold is None:
            from .detector import DEFAULT_THRESHOLD

            self.threshold = DEFAULT_THRESHOLD
        self.metric = metric
        # the metric of persistence (or the majority label) on the same events, printed beside it;
        # None once it no longer covers the same events (resumed from a checkpoint without it)
        self.baseline = None if metric is None else Baseline(task, metric)
        self._metric_takes_proba = task == "classify" and metric is not None and not getattr(
            metric, "requires_labels", True)
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.max_message_bytes = max_message_bytes
        self.horizon = horizon
        if interval is not None:
            from .forecaster import check_coverage

            check_coverage(interval)  # (ValueError here, not on every event)
        self.interval = interval
        self.progress = progress
        self.stats = RunStats()
        self.state_key = state_key  # HMAC key of the checkpoint, or None (checksummed only)
        self._metric_warned = False
        self.truncated_dead_letters = 0
        self.dead_reasons = collections.Counter()  # reason (up to its first ':') -> events, this run
        self.fields_seen: list | None = None  # the fields of the first record decoded, for the report
        self.positions: dict = {}  # (topic, partition) -> last processed offset
        self._last_time: dict = {}  # series -> the timestamp of its last event (forecast steps)
        self.transaction = transaction
        self.on_status = on_status
        self.status_every = status_every
        self.track_lag = False  # keep ``lag`` up to date every status_every seconds (the exporter sets it)
        self.lag: dict = {}  # (topic, partition) -> events behind the end, as last measured
        self.proba_top = _proba_top(proba)  # None: all; 0: none; K: the top K
        self._proba: dict = {}
        self._stop = False
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        if transaction is not None:
            source.on_revoke(self._revoked_in_transaction)
        if checkpoint_path and transaction is not None:
            checkpoint_file.settle_pending(checkpoint_path, state_key, source)
        if checkpoint_path and os.path.exists(checkpoint_path):
            self._load_checkpoint()

    # ---------------------------------------------------------------- checkpoints
    def _load_checkpoint(self):
        """Resume from the checkpoint file (see :mod:`streamrnn.checkpoint`)."""
        saved = checkpoint_file.read(self.checkpoint_path, self.state_key, self.model, self.source, self.metric)
        self.model, self.metric, self.positions, self.stats = saved.model, saved.metric, saved.positions, saved.stats
        self.baseline = checkpoint_file.restore_baseline(self.baseline, saved.baseline, self.metric,
                                                         f"checkpoint {self.checkpoint_path}")
        self.source.seek(self.positions)

    def _write_checkpoint(self, path=None):
        kept = checkpoint_file.write(path or self.checkpoint_path, self.state_key, self.model, self.metric,
                                     self.baseline, self.positions, self.stats)
        if not kept and not self._metric_warned:
            log.warning("the metric %s cannot be checkpointed: a resumed run starts it anew",
                        type(self.metric).__name__)
            self._metric_warned = True

    def _revoked_in_transaction(self, parts):
        # the partitions go to another member: commit what was done with them while they are ours
        self._commit_transaction(parts)
        for tp in parts:
            self.positions.pop(tp, None)

    def checkpoint(self):
        """Flush the sinks, save the model and positions, then commit the source offsets (with a
        transaction: commit it, with the offsets)."""
        if self.transaction is not None:
            self._commit_transaction()
            return
        self.flush_sinks()
        if self.checkpoint_path:
            self._write_checkpoint()
        # offsets last: what is committed is always covered by the saved model
        try:
            self.source.commit(dict(self.positions))
        except Exception as e:  # e.g. the broker is restarting: the checkpoint holds the positions
            if not self.checkpoint_path:
                raise
            log.warning("offset commit failed (%r); the checkpoint covers the positions", e)
        self._checkpointed()

    def flush_sinks(self):
        """Flush the predictions, the dead letters and the alerts."""
        for sink in (self.sink, self.dead_letter, self.alerts):
            if sink is not None:
                sink.flush()

    def _checkpointed(self):
        """Start counting the events and seconds to the next checkpoint."""
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def _commit_transaction(self, revoked=()):
        """Commit the open transaction with the offsets of the partitions this worker owns (and of
        ``revoked``, being given up: the group's generation still lets it commit them)."""
        owned = self.source.owned_partitions()
        owned = set(self.positions if owned is None else owned) | set(revoked)
        positions = {tp: o for tp, o in self.positions.items() if tp in owned}
        if self.checkpoint_path:
            self._write_checkpoint(f"{self.checkpoint_path}.pending")
        self.transaction.commit(positions, self.source.group_metadata())
        if self.checkpoint_path:
            os.replace(f"{self.checkpoint_path}.pending", self.checkpoint_path)
        self._checkpointed()

    # ---------------------------------------------------------------- one event
    def _dead(self, event: Event, reason: str):
        self.stats.dead_lettered += 1
        self.dead_reasons[reason.split(":", 1)[0][:120]] += 1
        if self.dead_letter is None:
            return
        headers = list(event.headers) + [("streamrnn.error", reason.encode("utf-8", "replace")),
                                         ("streamrnn.source", event.position.encode())]
        try:
            self.dead_letter.write_raw(event.value, key=event.key, headers=headers)
        except Exception as e:  # e.g. too large for the dead-letter topic: keep its head and say so
            log.warning("dead letter of %s refused by the sink (%s): writing its first %d bytes",
                        event.position, type(e).__name__, DEAD_LETTER_HEAD)
            headers.append(("streamrnn.truncated", f"{len(event.value)} bytes; sink refused the whole: {e}"[:500]
                            .encode("utf-8", "replace")))
            self.dead_letter.write_raw(event.value[:DEAD_LETTER_HEAD], key=(event.key or b"")[:1024] or None,
                                       headers=headers)
            self.truncated_dead_letters += 1

    def model_for(self, event: Event, record: dict):
        """The model that predicts ``event`` and the name of its series: the run's one model, and
        the key field's value for the baseline (None without one). A keyed runner gives each key
        its own model; a :class:`~streamrnn.BadInput` raised here is dead-lettered."""
        return self.model, None if self.key_field is None else str(record.get(self.key_field))

    def learned(self, event: Event, series) -> None:
        """The model of ``series`` learned from ``event`` (a keyed runner marks it for saving)."""

    def _future_xs(self, x, series):
        """The inputs of the steps a forecast covers: ``x`` for the first (the event being
        predicted), and for the later ones the same features with the timestamp moved on by the
        spacing of the last two events of the series (the calendar inputs of those steps)."""
        if not x:
            return None
        ts = x.get(self.timestamp_field) if self.timestamp_field is not None else None
        if ts is None:
            return [x] * self.horizon
        last = self._last_time.get(series)
        self._last_time[series] = ts
        step = ts - last if last is not None and ts > last else None
        if self.horizon == 1 or step is None:
            return [x] * self.horizon
        return [x] + [{**x, self.timestamp_field: ts + k * step} for k in range(1, self.horizon)]

    def _predict_and_learn(self, model, series, x, y):
        """Predict, then learn; a prediction that is not finite is refused before the model learns
        (so the model is as it was) and the event dead-lettered."""
        if self.task == "anomaly":
            score = model.score_one(x)
            if not math.isfinite(score):
                raise NonFinitePrediction("the model gave a non-finite score")
            model.learn_one(x)
            return score, {}
        if self.task == "forecast":
            xs = self._future_xs(x, series)
            if self.interval:
                forecast, intervals = model.forecast_with_interval(self.horizon, self.interval, xs)
            else:
                forecast = model.forecast(self.horizon, xs)
            if not all(math.isfinite(v) for v in forecast):
                raise NonFinitePrediction("the model forecast a non-finite value")
            extra = {"forecast": forecast} if self.horizon > 1 else {}
            if self.interval:  # (JSON has no infinity: an unbounded end is null)
                extra["interval"] = [[v if math.isfinite(v) else None for v in bounds] for bounds in intervals]
            model.learn_one(y, x or None)
            return forecast[0], extra
        if self.task == "classify":
            proba = model.predict_proba_one(x)
            if not all(math.isfinite(p) for p in proba.values()):
                raise NonFinitePrediction("the model gave a non-finite probability")
            label = max(proba, key=proba.get) if proba else None
            model.learn_one(x, y)
            self._proba = proba  # all of it, for a probability metric
            if self.proba_top is None:
                return label, {"proba": proba}
            if not self.proba_top:
                return label, {}
            return label, {"proba": dict(sorted(proba.items(), key=lambda kv: -kv[1])[:self.proba_top])}
        fused = getattr(model, "predict_learn_one", None)  # streamrnn's regressor: one kernel call
        if fused is not None:
            pred = fused(x, y)  # learns only from a finite prediction
            if not math.isfinite(pred):
                raise NonFinitePrediction("the model predicted a non-finite value")
            return pred, {}
        pred = model.predict_one(x)
        if not math.isfinite(pred):
            raise NonFinitePrediction("the model predicted a non-finite value")
        model.learn_one(x, y)
        return pred, {}

    def process(self, event: Event) -> dict | None:
        """Handle one event; returns the prediction record, or None if it was dead-lettered.

        Bad input (a :class:`~connectors.base.DecodeError` or :class:`~streamrnn.BadInput`) is
        dead-lettered with its reason; anything else is a bug and propagates, and the event is not
        counted as processed (a restart sees it again)."""
        out = self._handle(event)
        self.stats.events_in += 1
        self.positions[(event.topic, event.partition)] = event.offset
        self._since_checkpoint += 1
        return out

    def _handle(self, event: Event) -> dict | None:
        if len(event.value) > self.max_message_bytes:
            self._dead(event, f"oversized message: {len(event.value)} bytes > {self.max_message_bytes}")
            return None
        try:
            record = self.source.decode(event)
            if self.fields_seen is None:
                self.fields_seen = [str(k)[:40] for k in list(record)[:30]]
            x, y = self.reader.read(record)
            model, series = self.model_for(event, record)
            y_pred, extra = self._predict_and_learn(model, series, x, y)
            self.learned(event, series)
        except (DecodeError, BadInput) as e:
            # estimators validate before they change anything, so the model is untouched
            self._dead(event, str(e))
            return None
        if self.metric is not None and y_pred is not None:
            self.metric.update(y, self._proba if self._metric_takes_proba else y_pred)
        if self.baseline is not None:  # scored on the events the metric scores, learns from all
            self.baseline.update(series, y, score=y_pred is not None)
        alert = self.task == "anomaly" and y_pred >= self.threshold
        out = ({"source": event.position, "score": y_pred, "alert": alert} if self.task == "anomaly" else
               {"source": event.position, "prediction": y_pred, "y": y})
        out.update(extra)
        if self.key_field is not None:
            out["key"] = record.get(self.key_field)
        if self.timestamp_field is not None:
            out["timestamp"] = record.get(self.timestamp_field)
        self.sink.write(out, key=event.key, headers=event.headers or None)
        self.stats.predictions_out += 1
        if alert:
            self.alerts_out += 1
            if self.alerts is not None:
                self.alerts.write(out, key=event.key, headers=event.headers or None)
        return out

    # ---------------------------------------------------------------- models and lag
    def live_models(self) -> list:
        """The models in memory (for the metrics exporter)."""
        return [self.model]

    def model_count(self) -> int:
        return 1

    def _refresh_lag(self):
        """How far behind the end of each assigned partition the run is (Kafka sources)."""
        assigned = self.source.owned_partitions()
        if not assigned:
            return
        lag = {}
        for tp in sorted(assigned):
            try:
                end = self.source.end_offset(*tp)
            except Exception as e:  # a broker hiccup: the figure waits for the next look
                log.debug("no end offset of %s/%s: %r", *tp, e)
                continue
            if end is not None:
                lag[tp] = max(end - self.positions.get(tp, -1) - 1, 0)
        self.lag = lag

    # ---------------------------------------------------------------- the loop
    def _events_left(self):
        """How many events a file source has left (a progress bar's total), or None (a stream)."""
        topic = getattr(self.source, "topic", None)
        if type(topic) is not str or self.source.owned_partitions() is not None:  # a group's topics have no end
            return None
        end = self.source.end_offset(topic, 0)
        return None if end is None else max(end - self.positions.get((topic, 0), -1) - 1, 0)

    def stop(self, *_):
        """Ask the loop to stop after the current event (safe from a signal handler)."""
        self._stop = True
        self.source.stop()

    def run(self, max_events: int | None = None, handle_signals: bool = True) -> RunStats:
        previous = {}
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self.stop)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(unit=" ev", smoothing=0.1, mininterval=0.5, dynamic_ncols=True, total=self._events_left())
        start = time.monotonic()
        next_status = start + self.status_every
        elapsed_before = self.stats.elapsed
        processed = 0
        failed = True
        try:
            for event in self.source:
                if event is not None:
                    self.process(event)
                    processed += 1
                    if bar is not None and processed % 1000 == 0:
                        bar.update(1000)
                        if self.metric is not None:
                            bar.set_postfix_str(str(self.metric), refresh=False)
                if (self.on_status is not None or self.track_lag) and time.monotonic() >= next_status:
                    next_status = time.monotonic() + self.status_every
                    self._refresh_lag()
                    if self.on_status is not None:
                        self.on_status(self, processed / max(time.monotonic() - start, 1e-9))
                if (self._since_checkpoint >= self.checkpoint_every or
                        (self._since_checkpoint and time.monotonic() - self._last_checkpoint >= self.checkpoint_interval)):
                    self.stats.elapsed = elapsed_before + time.monotonic() - start
                    self.checkpoint()
                if self._stop or (max_events is not None and processed >= max_events):
                    break
            failed = False
        finally:
            self.stats.elapsed = elapsed_before + time.monotonic() - start
            if failed and self.transaction is not None:
                # exactly-once: the output of the events since the last commit is withdrawn
                self.transaction.abort("the run stopped on an error")
            elif failed:
                # a bug, not bad input: what was written goes out (at-least-once), but no checkpoint
                # claims the events since the last one, so a restart processes them again
                self.flush_sinks()
            else:
                self.checkpoint()
            if bar is not None:
                bar.update(processed % 1000)
                bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stats
