"""The Numenta Anomaly Benchmark's scoring, as NAB v1.1 defines it (Lavin and Ahmad, "Evaluating
Real-time Anomaly Detection Algorithms", 2015; Ahmad et al., Neurocomputing 2017).

A detector gives every row of every series a score in [0, 1]; a row is a detection when its score
is at least the threshold. Each labelled anomaly window counts once: its earliest detection earns
``tp * S(p) / S(-1)``, where ``p = -(end - i + 1) / length`` is the detection's position in the
window (-1 at its start, so early detections earn more) and ``S(p) = 2 / (1 + exp(5 p)) - 1`` is
NAB's scaled sigmoid; a window without a detection costs ``fn``. A detection outside every window
costs ``fp`` if no window precedes it, and ``fp * S((i - end) / (length - 1))`` after a window
(ending ``end``, of ``length`` rows): almost nothing right after the window, the full ``fp`` three
window lengths on. The first 15% of each series (at most 750 rows) is a probation period whose
detections do not count. The threshold is optimised per profile over the whole corpus (one
threshold for every series), and the corpus score is normalised between the null detector (no
detection: ``-fn`` per window) and the perfect one (each window detected at its first row: ``tp``
per window): ``100 * (raw - null) / (perfect - null)``.

    from nab_scoring import PROFILES, load_corpus, optimise
    corpus = load_corpus("../shared/datasets/nab")
    scores = [my_detector(f.values) for f in corpus]
    for profile in PROFILES:
        print(profile.name, optimise(corpus, scores, profile).normalised)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib

import numpy as np

PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000  # the probation period is at most PROBATION_FRACTION of this many rows


@dataclasses.dataclass(frozen=True)
class Profile:
    """The weights of an application profile: the reward of a true positive, the costs of a false
    positive and of a missed window."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (
    Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
)


@dataclasses.dataclass
class NabFile:
    """One series of the corpus: its name (``category/file.csv``, as in the labels), the
    timestamps and values, and each anomaly window's first and last row."""

    name: str
    timestamps: list
    values: np.ndarray
    windows: list


def load_corpus(root, labels="labels/combined_windows.json") -> list[NabFile]:
    """Every series listed in NAB's window labels under ``root`` (NAB's ``data/`` and ``labels/``)."""
    root = pathlib.Path(root)
    windows = json.loads((root / labels).read_text())
    corpus = []
    for name in sorted(windows):
        with open(root / "data" / name, newline="") as f:
            rows = list(csv.reader(f))
        if rows[0] != ["timestamp", "value"]:
            raise ValueError(f"{name}: expected the columns timestamp,value, got {rows[0]}")
        stamps = [r[0] for r in rows[1:]]
        index = {t: i for i, t in enumerate(stamps)}
        spans = []
        for start, end in windows[name]:
            # the labels' timestamps carry microseconds ("2014-04-10 07:15:00.000000"); the data's do not
            first, last = index.get(start.split(".")[0]), index.get(end.split(".")[0])
            if first is None or last is None or last < first:
                raise ValueError(f"{name}: window {start} .. {end} does not match the data's timestamps")
            spans.append((first, last))
        corpus.append(NabFile(name, stamps, np.array([float(r[1]) for r in rows[1:]]), spans))
    return corpus


def probation_length(rows: int) -> int:
    return int(min(math.floor(PROBATION_FRACTION * rows), PROBATION_FRACTION * PROBATION_CAP_ROWS))


def scaled_sigmoid(position: float) -> float:
    """NAB's reward of a detection at ``position`` relative to a window's end (see the module)."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)


def _row_values(file: NabFile, profile: Profile):
    """Per row: the window it is in (-1 outside), what detecting it earns (inside: the reward if it
    is the window's earliest detection; outside: its false-positive cost), and whether it is
    scored (not in the probation period)."""
    n = len(file.values)
    window = np.full(n, -1)
    value = np.empty(n)
    previous = None  # (end, length) of the last window ending before the row
    spans = iter(sorted(file.windows))
    upcoming = next(spans, None)
    i = 0
    while i < n:
        if upcoming is not None and i == upcoming[0]:
            first, last = upcoming
            length = last - first + 1
            for j in range(first, last + 1):
                window[j] = first
                value[j] = profile.tp * scaled_sigmoid(-(last - j + 1) / length) / _MAX_TP
            previous = (last, length)
            upcoming = next(spans, None)
            i = last + 1
            continue
        if previous is None:
            value[i] = -profile.fp
        else:
            end, length = previous
            value[i] = profile.fp * scaled_sigmoid((i - end) / (length - 1) if length > 1 else 2.0)
        i += 1
    scored = np.arange(n) >= probation_length(n)
    return window, value, scored


def file_score(file: NabFile, scores, threshold: float, profile: Profile) -> float:
    """The raw score of one series at ``threshold``, straight from the definition."""
    window, value, scored = _row_values(file, profile)
    detected = (np.asarray(scores) >= threshold) & scored
    total = 0.0
    for first, last in file.windows:
        hits = np.flatnonzero(detected[first:last + 1])
        total += value[first + hits[0]] if len(hits) else -profile.fn
    return total + float(value[detected & (window < 0)].sum())


@dataclasses.dataclass
class Result:
    threshold: float
    raw: float
    normalised: float
    tp: int  # windows detected
    fp: int  # detections outside the windows (after probation)


def as_nab_stores(scores) -> np.ndarray:
    """Scores as NAB's results files hold them: 12 significant digits (Python 2's ``str`` of a
    float, which NAB wrote them with). It matters: scores that saturate near 1 (``1 - 1e-13``)
    become ties at 1.0, and NAB's published numbers count them so."""
    return np.array([float(f"{v:.12g}") for v in np.asarray(scores, dtype=float)])


def optimise(corpus: list[NabFile], scores: list, profile: Profile, as_stored=True) -> Result:
    """The threshold with the best corpus score under ``profile``, swept over every score a row
    got (from the highest down, each row joining the detections; rows of equal score join
    together, as one threshold admits them all). With ``as_stored``, the scores are first
    rounded as NAB stores them (:func:`as_nab_stores`)."""
    windows_total = sum(len(f.windows) for f in corpus)
    if not windows_total:
        raise ValueError("the corpus has no anomaly window: its score is not defined")
    null, perfect = -profile.fn * windows_total, profile.tp * windows_total
    rows_score, rows_window, rows_value = [], [], []
    for k, (file, s) in enumerate(zip(corpus, scores)):
        s = np.asarray(s, dtype=float)
        if s.shape != file.values.shape or not np.isfinite(s).all():
            raise ValueError(f"{file.name}: expected {len(file.values)} finite scores")
        if as_stored:
            s = as_nab_stores(s)
        window, value, scored = _row_values(file, profile)
        rows_score.append(s[scored])
        # a window's id: its file and first row, made one integer
        rows_window.append(np.where(window[scored] >= 0, k * 10_000_000 + window[scored], -1))
        rows_value.append(value[scored])
    score, window, value = (np.concatenate(a) for a in (rows_score, rows_window, rows_value))
    order = np.argsort(-score, kind="stable")
    score, window, value = score[order].tolist(), window[order].tolist(), value[order].tolist()
    total, earliest = null, {}  # window -> reward of its earliest detection so far
    best = Result(math.inf, null, 0.0, 0, 0)
    fp = 0
    for i, (s, w, v) in enumerate(zip(score, window, value)):
        if w < 0:
            total += v
            fp += 1
        else:
            had = earliest.get(w)
            if had is None:
                total += profile.fn + v
                earliest[w] = v
            elif v > had:  # an earlier row of the window (the reward falls along it)
                total += v - had
                earliest[w] = v
        if (i + 1 == len(score) or score[i + 1] != s) and total > best.raw:
            best = Result(s, total, 0.0, len(earliest), fp)
    best.normalised = 100.0 * (best.raw - null) / (perfect - null)
    return best


def windowed_gaussian(values, window=6400, step=100) -> np.ndarray:
    """NAB's windowed Gaussian baseline: the score of a value is ``1 - Q(|z|)`` (Q the normal tail
    probability), ``z`` taken against the mean and standard deviation of the values before it,
    at most ``window`` of them, the window moving on by ``step`` values once full (0 for the
    first value; a standard deviation of 0 counts as 1e-6)."""
    x = np.asarray(values, dtype=float)
    shifted = x - x[0]  # exact zeros for a constant stretch, and smaller sums
    c1 = np.concatenate([[0.0], np.cumsum(shifted)])
    c2 = np.concatenate([[0.0], np.cumsum(shifted * shifted)])
    out = np.zeros(len(x))
    for i in range(1, len(x)):
        end = i if i <= window else window + step * ((i - window) // step)
        start = max(end - window, 0)
        m = end - start
        mean = (c1[end] - c1[start]) / m
        var = max((c2[end] - c2[start]) / m - mean * mean, 0.0)
        std = math.sqrt(var)
        if std <= 1e-12 * max(1.0, abs(mean)):
            std = 1e-6
        z = abs(shifted[i] - mean) / std
        out[i] = 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))
    return out
