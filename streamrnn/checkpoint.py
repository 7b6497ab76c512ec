"""The checkpoint file of a run with one model: the model, the metric and its baseline, the
positions it covers and the run's counts, as one :mod:`streamrnn.persist` document (never a
pickle), written atomically; every field is checked before anything is built from it.

With exactly-once output a checkpoint takes two steps: it is written beside the old one as
``PATH.pending`` before the transaction commits, and replaces it after (see :func:`settle_pending`).
"""

from __future__ import annotations

import dataclasses
import logging
import os

from . import persist
from .report import RunStats

log = logging.getLogger(__name__)


def _differences(given, loaded) -> list[str]:
    """What differs between two models' class and parameters, as ``name: loaded -> given``."""
    if type(given) is not type(loaded):
        return [f"model {type(loaded).__name__} -> {type(given).__name__}"]
    a, b = loaded._get_params(), given._get_params()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b.get(k)]


def read(path, state_key, given, source, metric):
    """``(model, metric, positions, stats, saved baseline)`` of the checkpoint at ``path``; a file
    that is not a valid checkpoint, whose model differs from ``given`` or whose positions lie past
    the end of ``source`` is refused with a :class:`~streamrnn.persist.StateError`."""
    with open(path, "rb") as f:
        header, arrays = persist.unpack_document(f.read(), state_key)
    where = f"checkpoint {path}"
    if header.get("kind") != "checkpoint":
        raise persist.StateError(f"{where} is not a streamrnn checkpoint")
    fields = header.get("model")
    if type(fields) is not dict:
        raise persist.StateError(f"{where} holds no model")
    model = persist.model_from(fields, arrays)
    differences = _differences(given, model)
    if differences:
        raise persist.StateError(f"{where} was written for another model ({'; '.join(differences)}): "
                                 "give the same settings, or start over with --reset")
    positions, stats = header.get("positions"), header.get("stats")
    if not (type(positions) is list and all(
            type(p) is list and len(p) == 3 and type(p[0]) is str and type(p[1]) is int and type(p[2]) is int
            and p[2] >= -1 for p in positions)):
        raise persist.StateError(f"{where}: bad positions")
    names = [f.name for f in dataclasses.fields(RunStats)]
    if type(stats) is not dict or sorted(stats) != sorted(names) or not all(
            type(v) in (int, float) and v >= 0 for v in stats.values()):
        raise persist.StateError(f"{where}: bad counts")
    for topic, partition, offset in positions:
        end = source.end_offset(topic, partition)
        if end is not None and offset >= end:
            raise persist.StateError(f"{where} covers offset {offset} of {topic}/{partition}, "
                                     f"past the end of the input ({end} events): it is of another stream")
    if header.get("metric") is not None:
        saved = persist.decode_metric(header["metric"])
        if metric is not None and type(saved) is not type(metric):
            raise persist.StateError(f"{where} keeps a {type(saved).__name__}, not a {type(metric).__name__}")
        metric = saved
    return model, metric, {(t, p): o for t, p, o in positions}, RunStats(**stats), header.get("baseline")


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
    """Write the checkpoint atomically (a temporary file, synced, then renamed); returns whether
    the metric could be kept (a metric persist cannot encode starts anew on a resume)."""
    model_fields, arrays = persist.model_parts(model)
    encoded = None if metric is None else persist.encode_metric(metric)
    blob = persist.pack_document({
        "kind": "checkpoint",
        "model": model_fields,
        "metric": encoded,
        "positions": [[t, p, o] for (t, p), o in positions.items()],
        "stats": dataclasses.asdict(stats),
        "baseline": None if baseline is None or encoded is None else {
            "metric": persist.encode_metric(baseline.metric), "state": persist.encode(baseline.state())},
    }, arrays, state_key)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return metric is None or encoded is not None


def settle_pending(path, state_key, source):
    """A ``PATH.pending`` checkpoint left by a worker that stopped between writing it and
    committing its transaction: it replaces the checkpoint if the transaction committed (the
    group's committed offsets are the ones after its positions), and is dropped otherwise."""
    pending = f"{path}.pending"
    if not os.path.exists(pending):
        return
    with open(pending, "rb") as f:
        header, _ = persist.unpack_document(f.read(), state_key)
    positions = header.get("positions") if header.get("kind") == "checkpoint" else None
    committed = type(positions) is list and bool(positions) and all(
        type(p) is list and len(p) == 3 and source.committed(p[0], p[1]) == p[2] + 1 for p in positions)
    if committed:
        os.replace(pending, path)
    else:
        log.warning("dropping %s: its transaction did not commit", pending)
        os.remove(pending)
