"""NAB's scoring (benchmarks/nab_scoring.py) on small generated corpora, against its definition
worked by hand, and the threshold sweep against scoring every threshold one by one."""

import math
import pathlib
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from nab_scoring import PROFILES, NabFile, file_score, optimise, probation_length, scaled_sigmoid  # noqa: E402

STANDARD = PROFILES[0]


def _file(n, windows, name="f.csv"):
    return NabFile(name, [str(i) for i in range(n)], np.zeros(n), windows)


def test_the_scaled_sigmoid_and_the_probation_period_as_nab_defines_them():
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.98661
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-scaled_sigmoid(-1.0))
    assert scaled_sigmoid(3.5) == -1.0
    assert probation_length(100) == 15 and probation_length(4032) == 604 and probation_length(22695) == 750


def test_one_series_scored_by_hand():
    f = _file(100, [(40, 49)])  # probation: rows 0..14; one window of 10 rows
    s = np.zeros(100)
    s[[5, 20, 45, 47, 52, 90]] = 1.0  # 5 is in probation; 45 is the window's earliest detection
    tp = scaled_sigmoid(-(49 - 45 + 1) / 10) / scaled_sigmoid(-1.0)
    fp_before = -0.11  # no window before row 20
    fp_after = [0.11 * scaled_sigmoid((i - 49) / 9) for i in (52, 90)]  # 90 is past 3 lengths: -0.11
    assert fp_after[1] == -0.11
    expected = tp + fp_before + sum(fp_after)
    assert file_score(f, s, 0.5, STANDARD) == pytest.approx(expected)
    # nothing detected: the window is missed
    assert file_score(f, s, 2.0, STANDARD) == -1.0
    # a detection at the window's first row earns the whole reward
    s2 = np.zeros(100)
    s2[40] = 1.0
    assert file_score(f, s2, 0.5, STANDARD) == pytest.approx(1.0)
    low_fn = PROFILES[2]
    assert file_score(f, np.zeros(100), 0.5, low_fn) == -2.0


def test_the_null_and_the_perfect_detector_are_0_and_100_under_every_profile():
    corpus = [_file(200, [(50, 69), (120, 139)], "a.csv"), _file(300, [], "b.csv"), _file(150, [(100, 119)], "c.csv")]
    null = [np.full(len(f.values), 0.5) for f in corpus]
    perfect = []
    for f in corpus:
        s = np.zeros(len(f.values))
        for first, _ in f.windows:
            s[first] = 1.0
        perfect.append(s)
    for profile in PROFILES:
        assert optimise(corpus, null, profile).normalised == pytest.approx(0.0)
        best = optimise(corpus, perfect, profile)
        assert best.normalised == pytest.approx(100.0) and best.tp == 3 and best.fp == 0


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_sweep_finds_the_best_threshold_of_the_definition(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    corpus, scores = [], []
    for k in range(data.draw(st.integers(1, 3))):
        n = data.draw(st.integers(40, 160))
        windows, at = [], probation_length(n) + data.draw(st.integers(0, 10))
        while at + 4 < n and data.draw(st.booleans()):
            length = data.draw(st.integers(1, 12))
            windows.append((at, min(at + length - 1, n - 1)))
            at = windows[-1][1] + data.draw(st.integers(1, 30))
        corpus.append(_file(n, windows, f"{k}.csv"))
        # few distinct values, so that ties (rows that only join together) are common
        scores.append(rng.choice(np.linspace(0.0, 1.0, data.draw(st.integers(2, 12))), size=n))
    profile = data.draw(st.sampled_from(PROFILES))
    if not any(f.windows for f in corpus):
        with pytest.raises(ValueError, match="no anomaly window"):
            optimise(corpus, scores, profile)
        return
    thresholds = sorted({float(v) for s in scores for v in s} | {2.0})
    by_definition = {t: sum(file_score(f, s, t, profile) for f, s in zip(corpus, scores)) for t in thresholds}
    best = optimise(corpus, scores, profile, as_stored=False)
    assert best.raw == pytest.approx(max(by_definition.values()), abs=1e-9)
    if best.threshold != math.inf:
        assert by_definition[best.threshold] == pytest.approx(best.raw, abs=1e-9)


def test_scores_are_checked_and_rounded_as_nab_stores_them():
    with pytest.raises(ValueError, match="finite scores"):
        optimise([_file(50, [(30, 39)])], [np.full(50, np.nan)], STANDARD)
    with pytest.raises(ValueError, match="50 finite scores"):
        optimise([_file(50, [(30, 39)])], [np.zeros(49)], STANDARD)
    # NAB's results files hold 12 significant digits: 1 - 1e-13 is stored as 1.0, a tie with it
    f = _file(100, [(40, 49)])
    s = np.zeros(100)
    s[45], s[60] = 1.0, 1.0 - 1e-13  # a detection, and a false positive just below it
    assert optimise([f], [s], STANDARD, as_stored=False).fp == 0
    assert optimise([f], [s], STANDARD).fp == 1
