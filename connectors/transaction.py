"""Exactly-once output: one Kafka transaction per checkpoint interval, as Kafka Streams'
``exactly_once_v2``.

A worker with ``--guarantee exactly-once`` writes everything through one transactional producer:
the predictions, the dead letters, the changelog records of its per-key models, and, last, the
input offsets it consumed (``send_offsets_to_transaction`` with the consumer's group metadata, so
that a worker the group has moved on from is fenced, KIP-447). Then the transaction commits, and
all of it becomes visible to ``read_committed`` consumers at once, or, if the worker dies first,
none of it: the next owner of the partitions resumes from the offsets and state of the last
committed transaction and writes the same output again, once. A transaction still open when its
worker was killed is aborted when a producer with the same ``transactional.id`` starts, or by the
broker after ``transaction.timeout.ms``; until then ``read_committed`` consumers of the output wait.

This module holds what the two clients share (begin on first use, a size check that makes a
too-large record a synchronous error, failures as :class:`TransactionFailed`); the clients'
producers are :class:`connectors.kafka.KafkaTransaction` and
:class:`connectors.kafka_confluent.ConfluentTransaction`.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# A record of a sink topic larger than this is refused before it is sent: the broker would refuse
# it (its default message.max.bytes is 1 MiB) only at commit, and that aborts the whole transaction.
# Changelog records have their own limit (their topic is created to take them).
MAX_SINK_RECORD_BYTES = 1_000_000
TRANSACTION_TIMEOUT_MS = 10_000  # Kafka Streams' default under exactly-once


class TransactionFailed(RuntimeError):
    """The transaction of the events since the last commit was aborted (or could not be): none of
    its output is visible to read_committed consumers, and a restart processes those events again."""


class RecordTooLarge(ValueError):
    """A record too large for its topic, refused before it entered the transaction."""


class Transaction:
    """A transactional producer shared by a worker's sinks and state store."""

    def __init__(self, transactional_id: str):
        self.transactional_id = transactional_id
        self.open = False
        self.sent = 0  # records in the open transaction
        self.commits = 0

    def send(self, topic, value: bytes, key=None, headers=None, partition=None, max_bytes=MAX_SINK_RECORD_BYTES):
        size = len(value) + len(key or b"") + sum(len(k) + len(v or b"") for k, v in headers or ())
        if max_bytes is not None and size > max_bytes:
            raise RecordTooLarge(f"a record of {size:,} bytes is over the {max_bytes:,} bytes a topic takes")
        if not self.open:
            self._begin()
            self.open = True
        self._send(topic, value, key, headers or None, partition)
        self.sent += 1

    def commit(self, positions: dict, group_metadata) -> None:
        """Add the consumed ``positions`` (``(topic, partition) -> last processed offset``) to the
        open transaction and commit it; raise :class:`TransactionFailed` if it was aborted."""
        if not positions and not self.open:
            return
        try:
            if not self.open:
                self._begin()
                self.open = True
            if positions:
                self._send_offsets({tp: offset + 1 for tp, offset in positions.items()}, group_metadata)
            self._commit()
        except Exception as e:
            self._fail(e)
        self.open = False
        self.sent = 0
        self.commits += 1

    def abort(self, why: str = "") -> None:
        """Abort the open transaction (its output is never visible to read_committed consumers)."""
        if not self.open:
            return
        self.open = False
        self.sent = 0
        try:
            self._abort()
            log.warning("transaction aborted%s", f": {why}" if why else "")
        except Exception as e:  # e.g. fenced: the broker aborts it, or a newer producer did
            log.warning("the transaction could not be aborted (%r): the broker aborts it after its timeout", e)

    def _fail(self, error):
        self.abort(f"commit failed: {error!r}")
        raise TransactionFailed(f"the transaction {self.transactional_id!r} did not commit ({type(error).__name__}: "
                                f"{error}); its output is discarded and a restart processes its events again") from error

    # implemented by each client
    def _begin(self):
        raise NotImplementedError

    def _send(self, topic, value, key, headers, partition):
        raise NotImplementedError

    def _send_offsets(self, offsets: dict, group_metadata):
        raise NotImplementedError

    def _commit(self):
        raise NotImplementedError

    def _abort(self):
        raise NotImplementedError

    def close(self):
        pass
