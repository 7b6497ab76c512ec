"""The input encoder: dicts to columns, its caches, and the refusal rules."""

import datetime as dt
import math

import numpy as np
import pytest

from streamrnn import BadInput
from streamrnn.encoder import MAX_ABS, InputEncoder, check_number


def _encoder(features, categorical=None, embed=False, slots=None, tokens_index=None, n_slots=0):
    n = len(features)
    return InputEncoder(np.zeros(n), np.zeros(n, dtype=np.uint8), np.zeros(n_slots), features,
                        categorical if categorical is not None else [False] * n,
                        {} if slots is None else slots, {} if tokens_index is None else tokens_index, "float64", embed)


def _grown(enc):
    """The encoder the estimator builds after making room for what ``fill`` added."""
    return _encoder(enc.features, enc.categorical, enc.embed, enc.slots, enc.tokens_index, len(enc.slots))


def test_new_features_are_added_in_sorted_order_and_filled_once_there_is_room():
    features, categorical = {}, []
    enc = _encoder(features, categorical)
    x = {"b": 2.0, "a": 1.0, "colour": "red", "when": dt.datetime(2024, 3, 1, 6)}
    assert enc.fill(x, learn=True)  # new features: room must be made
    assert list(features)[:3] == ["a", "b", ("colour", "red")]
    assert len(features) == 3 + 6 and categorical == [False, False, True] + [False] * 6
    enc = _grown(enc)
    assert not enc.fill(x, learn=True)
    assert enc.xbuf[:3].tolist() == [1.0, 2.0, 1.0] and enc.present.tolist() == [1] * 9
    hour = features[("when", "hour_sin")]
    assert enc.xbuf[hour] == pytest.approx(math.sin(2 * math.pi * 6 / 24))
    # a category not given reads as 0 and is an observation; a missing number is absent
    assert not enc.fill({"a": 5.0, "b": None}, learn=False)
    assert enc.xbuf[:3].tolist() == [5.0, 0.0, 0.0] and enc.present[:3].tolist() == [1, 0, 1]


def test_the_caches_follow_every_write_to_the_buffers():
    enc = _encoder({"a": 0, "b": 1})
    x = {"a": 1.0, "b": 2.0}
    enc.fill(x, learn=False)
    assert enc.holds(x) and enc.holds_all
    x["a"] = 7.0  # the memo is a copy: a mutated dict is not the one the buffers hold
    assert not enc.holds(x)
    assert enc.fast_fill(x) and enc.xbuf.tolist() == [7.0, 2.0]  # same keys: only the values change
    assert not enc.fast_fill({"b": 1.0, "a": 2.0})  # another key order goes the full way
    enc.fill_dense((3.0, None))
    assert not enc.holds(x) and not enc.fast_fill(x)  # what the buffers held is gone
    assert enc.xbuf.tolist() == [3.0, 0.0] and enc.present.tolist() == [1, 0]
    enc.fill({"a": 1.0, "z": 4.0}, learn=False)  # z is unknown and left out
    assert not enc.holds_all and not enc.holds({"a": 1.0, "z": 4.0})


@pytest.mark.parametrize("bad, reason", [
    ({"a": math.nan}, "feature 'a' is not finite"),
    ({"a": 1e200}, "is beyond"),
    ({"a": 10 ** 400}, "too large for a float"),
    ({"a": [1.0]}, "unsupported type list"),
    ({("a", 1): 1.0}, "feature names must be strings or integers"),
    ({True: 1.0}, "feature names must be strings or integers"),
    ({"a": 1 + 2j}, "unsupported type complex"),
])
def test_a_refused_x_names_the_feature_and_leaves_the_index_alone(bad, reason):
    features = {"b": 0}
    enc = _encoder(features)
    enc.fill({"b": 1.0}, learn=False)
    with pytest.raises(BadInput, match=reason):
        enc.fill({"new": 1.0, **bad}, learn=True)
    assert features == {"b": 0} and not enc.holds({"b": 1.0})
    with pytest.raises(BadInput, match=reason):  # the fast path refuses the same way
        enc = _encoder({"a": 0})
        enc.fill({"a": 1.0}, learn=False)
        if not enc.fast_fill(bad):
            enc.fill(bad, learn=False)


def test_embedded_categories_take_rows_and_slots():
    slots, tokens = {}, {}
    enc = _encoder({}, [], embed=True, slots=slots, tokens_index=tokens)
    assert enc.fill({"w": "b", "v": "a"}, learn=True)
    assert slots == {"v": 0, "w": 1} and tokens == {("v", "a"): 0, ("w", "b"): 1}
    enc = _grown(enc)
    enc.fill({"w": "b", "v": "a"}, learn=False)
    assert enc.tokens.tolist() == [0.0, 1.0]
    enc.fill({"w": "unseen"}, learn=False)
    assert enc.tokens.tolist() == [-1.0, -1.0] and not enc.holds_all


def test_check_number_is_the_one_rule_for_targets():
    assert check_number(2) == 2.0 and check_number(np.float32(1.5)) == 1.5
    for value, reason in [(None, "is None"), ("1", "must be a number"), (math.inf, "not finite"),
                          (10 ** 400, "too large"), (1e20, "beyond")]:
        with pytest.raises(BadInput, match=reason):
            check_number(value, "y", MAX_ABS["float32"])
