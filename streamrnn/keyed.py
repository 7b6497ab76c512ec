"""One model per key, scaled out over a Kafka consumer group.

Start the same ``streamrnn run --key FIELD --state kafka`` command on N processes or machines:
Kafka spreads the input partitions over them, every key lives in one partition, so each key's
events reach one worker, in order. A worker restores a partition's models from the changelog the
first time it sees an event of that partition, writes them back at every checkpoint (before it
commits the offsets, together with a marker of the last offset they cover), and flushes them when
the partition is revoked. A worker that dies without a word loses at most the events after its
last checkpoint: the next owner restores the last state and processes them again (at-least-once
predictions; the models end exactly as if nothing had happened). With ``--guarantee
exactly-once`` the changelog records, the predictions and the offsets of a checkpoint interval
are one Kafka transaction, so the next owner's output continues exactly where the committed one
ends: one prediction per input offset.
"""

from __future__ import annotations

import logging

from connectors.base import Event

from .records import BadRecord
from .runner import Runner
from .state import KeyedModels, restore_partition, write_partition

log = logging.getLogger(__name__)


class KeyedRunner(Runner):
    """A :class:`~streamrnn.runner.Runner` with one model per key (``key_field``, or the
    message key with ``key_field='@key'``), each a clone of ``model`` on first sight, kept per
    partition in ``store``."""

    def __init__(self, source, sink, model, task, target, key_field, store, max_hot_models=10_000, state_key=None,
                 **kw):
        if kw.get("checkpoint_path"):
            raise ValueError("per-key models keep their state in the store, not in a checkpoint file")
        super().__init__(source, sink, model, task, target, key_field=None if key_field == "@key" else key_field,
                         **kw)
        self.key_from_message = key_field == "@key"
        self.key_name = key_field
        self.template = model
        self.store = store
        self.max_hot_models = max_hot_models
        self.partitions: dict = {}  # (topic, partition) -> KeyedModels
        self.covered = 0  # events skipped because a restored state already covered them
        self.restored: dict = {}  # (topic, partition) -> marker it was restored at
        self.state_key = state_key  # HMAC key of the state records, or None
        self.rejected: list = []  # reasons of the state records refused on restore
        source.on_revoke(self._revoked)

    # ---------------------------------------------------------------- partitions
    def _partition(self, topic, partition) -> KeyedModels:
        models = self.partitions.get((topic, partition))
        if models is None:
            if self.transaction is not None and self.transaction.open:
                # a restore may take longer than a transaction may stay open: commit first
                self._commit_transaction()
            ensure = getattr(self.store, "ensure_topic", None)
            if ensure is not None:
                ensure(self.source.partition_count(topic))
            versions = restore_partition(self.store, topic, partition, self.state_key,
                                         self.source.end_offset(topic, partition))
            for reason in versions.rejected:
                log.error("refused a state record of %s/%s: %s", topic, partition, reason)
            self.rejected += versions.rejected
            models = KeyedModels(self.template, versions.models, versions.marker, self.max_hot_models,
                                 self.state_key)
            self.partitions[(topic, partition)] = models
            self.restored[(topic, partition)] = versions.marker
            log.info("restored %s/%s: %d models, marker %d", topic, partition, len(versions.models),
                     versions.marker)
        return models


    def _save(self, keys=None):
        """Write the dirty models and the markers of ``keys`` (default: every partition)."""
        for tp in list(self.partitions if keys is None else keys):
            models = self.partitions.get(tp)
            if models is None:
                continue
            last = self.positions.get(tp)
            if last is None or (last == models.marker and not models.dirty):
                continue
            write_partition(self.store, tp[0], tp[1], models.take_dirty(), last, self.state_key)
            models.marker = last
        self.store.flush()

    def _revoked(self, parts):
        # runs inside the consumer's poll: no blocking consumer calls here, only our producers
        if self.transaction is not None:
            self._save()  # into the open transaction, committed with the offsets of every partition
            self._commit_transaction(parts)
        else:
            self.flush_sinks()
            self._save([tp for tp in parts if tp in self.partitions])
        for tp in parts:
            self.partitions.pop(tp, None)
            self.positions.pop(tp, None)

    def checkpoint(self):
        if self.transaction is not None:
            self._save()  # the changelog records join the transaction of the predictions
            self._commit_transaction()
            return
        self.flush_sinks()
        self._save()
        try:
            self.source.commit({tp: off for tp, off in self.positions.items() if tp in self.partitions})
        except Exception as e:  # a commit lost to a rebalance or a broker restart: the markers hold
            log.warning("offset commit failed (%r); the changelog markers still cover the state", e)
        self._checkpointed()

    # ---------------------------------------------------------------- events
    def process(self, event: Event):
        models = self._partition(event.topic, event.partition)
        if event.offset <= models.marker:
            # already in the restored state: the committed offset lags the changelog marker after
            # a crash or a revocation (a seek here would race the records already fetched)
            self.covered += 1
            return None
        return super().process(event)

    def live_models(self) -> list:
        return [m for models in list(self.partitions.values()) for m in list(models.hot.values())]

    def model_count(self) -> int:
        return sum(len(models) for models in list(self.partitions.values()))

    def model_for(self, event, record):
        """The model of the event's key (a clone of the template on first sight), restored with
        its partition."""
        if self.key_from_message:
            key = event.key.decode("utf-8", "replace") if event.key is not None else ""
        else:
            raw = record.get(self.key_name)
            if raw is None:
                raise BadRecord(f"missing key field {self.key_name!r}")
            if isinstance(raw, (dict, list)):
                raise BadRecord(f"key field {self.key_name!r} is not a scalar: {type(raw).__name__}")
            key = str(raw)
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRecord(f"key field {self.key_name!r} is not valid text (a lone surrogate)") from None
        return self._partition(event.topic, event.partition).get(key), key

    def learned(self, event, series):
        self._partition(event.topic, event.partition).touch(series)
