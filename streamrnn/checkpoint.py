"""The checkpoint of a run with one model: a store file (:func:`streamrnn.state.write_records`,
the format of a keyed run's directory store) holding one key, the model, beside the run's marker:
the positions the model covers, the run's counts, the metric and its baseline. Every record is
checked before anything is built from it, and nothing in it is ever unpickled.

With exactly-once output a checkpoint takes two steps: it is written beside the old one as
``PATH.pending`` before the transaction commits, and replaces it after (see :func:`settle_pending`).

A checkpoint written by streamrnn before the store format (one ``"checkpoint"`` document) is read
the same way, and the next checkpoint writes it in the store format.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from . import persist, state
from .report import RunStats

log = logging.getLogger(__name__)

MODEL = "model"  # the one key of a one-model run's store
_MODEL_RECORD, _MARKER_RECORD = MODEL.encode(), state.MARKER.encode()


@dataclasses.dataclass
class Checkpoint:
    """What a checkpoint holds, checked: the model, the metric (None if it kept none), the last
    offset covered per ``(topic, partition)``, the counts and the baseline's saved state."""

    model: object
    metric: object
    positions: dict
    stats: RunStats
    baseline: dict | None


def _run_fields(marker: dict, where) -> tuple[dict, RunStats]:
    """The positions and counts of a run's marker, checked."""
    positions, stats = marker.get("positions"), marker.get("stats")
    if not (type(positions) is list and all(
            type(p) is list and len(p) == 3 and type(p[0]) is str and type(p[1]) is int and type(p[2]) is int
            and p[2] >= -1 for p in positions)):
        raise persist.StateError(f"{where}: bad positions")
    names = [f.name for f in dataclasses.fields(RunStats)]
    if type(stats) is not dict or sorted(stats) != sorted(names) or not all(
            type(v) in (int, float) and v >= 0 for v in stats.values()):
        raise persist.StateError(f"{where}: bad counts")
    return {(t, p): o for t, p, o in positions}, RunStats(**stats)


def _parts(path, secret):
    """``(model, marker)`` of the checkpoint file at ``path``, each checked as a document."""
    where = f"checkpoint {path}"
    with open(path, "rb") as f:
        header, arrays = persist.unpack_document(f.read(), secret)
    if header.get("kind") == "checkpoint":  # the format before the store: model and marker in one document
        fields = header.get("model")
        if type(fields) is not dict:
            raise persist.StateError(f"{where} holds no model")
        return persist.model_from(fields, arrays), header
    records = state.records_of(header, arrays, where)
    if set(records) != {_MODEL_RECORD, _MARKER_RECORD}:
        raise persist.StateError(f"{where} is not a one-model checkpoint (its keys: "
                                 f"{sorted(k.decode('utf-8', 'replace')[:40] for k in records)[:5]})")
    model, fields = persist.loads(records[_MODEL_RECORD], secret, with_fields=True)
    if fields.get("key") != MODEL:
        raise persist.StateError(f"{where}: the model was saved under another key")
    marker, _ = persist.unpack_document(records[_MARKER_RECORD], secret)
    if marker.get("kind") != "marker":
        raise persist.StateError(f"{where} has no run marker")
    return model, marker


def load(path, secret=None) -> Checkpoint:
    """The checkpoint at ``path``, every field checked (:class:`~streamrnn.persist.StateError`)."""
    where = f"checkpoint {path}"
    model, marker = _parts(path, secret)
    positions, stats = _run_fields(marker, where)
    metric = None if marker.get("metric") is None else persist.decode_metric(marker["metric"])
    baseline = marker.get("baseline")
    if baseline is not None and type(baseline) is not dict:
        raise persist.StateError(f"{where}: bad baseline")
    return Checkpoint(model, metric, positions, stats, baseline)


def _differences(given, loaded) -> list[str]:
    """What differs between two models' class and parameters, as ``name: loaded -> given``."""
    if type(given) is not type(loaded):
        return [f"model {type(loaded).__name__} -> {type(given).__name__}"]
    a, b = loaded._get_params(), given._get_params()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b.get(k)]


def read(path, state_key, given, source, metric) -> Checkpoint:
    """The checkpoint at ``path`` for a run of ``given`` over ``source`` scored by ``metric``: one
    whose model differs from ``given``, whose positions lie past the end of ``source`` or whose
    metric is of another kind is refused with a :class:`~streamrnn.persist.StateError`. Its
    metric is None when it kept none and the run has ``metric``, which then starts anew."""
    where = f"checkpoint {path}"
    saved = load(path, state_key)
    differences = _differences(given, saved.model)
    if differences:
        raise persist.StateError(f"{where} was written for another model ({'; '.join(differences)}): "
                                 "give the same settings, or start over with --reset")
    for (topic, partition), offset in saved.positions.items():
        end = source.end_offset(topic, partition)
        if end is not None and offset >= end:
            raise persist.StateError(f"{where} covers offset {offset} of {topic}/{partition}, "
                                     f"past the end of the input ({end} events): it is of another stream")
    if saved.metric is not None:
        if metric is not None and type(saved.metric) is not type(metric):
            raise persist.StateError(f"{where} keeps a {type(saved.metric).__name__}, not a {type(metric).__name__}")
        metric = saved.metric
    return dataclasses.replace(saved, metric=metric)


def restore_baseline(baseline, saved, metric, where):
    """``baseline`` restored from its ``saved`` state, or None when it would not cover the events
    the resumed ``metric`` covers."""
    if baseline is None or saved is None or metric is None:
        return None
    try:
        baseline.restore(persist.decode_metric(saved["metric"]), persist.decode(saved["state"]))
    except (ValueError, KeyError, TypeError) as e:
        raise persist.StateError(f"{where}: bad baseline ({e})") from None
    return baseline


def write(path, state_key, model, metric, baseline, positions: dict, stats: RunStats) -> bool:
    """Write the checkpoint (atomically: see :func:`streamrnn.state.write_records`); returns
    whether the metric could be kept (a metric persist cannot encode starts anew on a resume)."""
    encoded = None if metric is None else persist.encode_metric(metric)
    marker = persist.pack_document({
        "kind": "marker",
        "positions": [[t, p, o] for (t, p), o in positions.items()],
        "stats": dataclasses.asdict(stats),
        "metric": encoded,
        "baseline": None if baseline is None or encoded is None else {
            "metric": persist.encode_metric(baseline.metric), "state": persist.encode(baseline.state())},
    }, secret=state_key)
    state.write_records(path, {_MODEL_RECORD: persist.dumps(model, state_key, key=MODEL), _MARKER_RECORD: marker},
                        state_key)
    return metric is None or encoded is not None


def settle_pending(path, state_key, source):
    """A ``PATH.pending`` checkpoint left by a worker that stopped between writing it and
    committing its transaction: it replaces the checkpoint if the transaction committed (the
    group's committed offsets are the ones after its positions), and is dropped otherwise."""
    pending = f"{path}.pending"
    if not os.path.exists(pending):
        return
    positions = load(pending, state_key).positions
    if positions and all(source.committed(t, p) == o + 1 for (t, p), o in positions.items()):
        os.replace(pending, path)
    else:
        log.warning("dropping %s: its transaction did not commit", pending)
        os.remove(pending)
