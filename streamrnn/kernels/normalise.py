"""The running normalisation of inputs and target, and the sum of the input embeddings."""

import numpy as np

from . import heads
from ._jit import kernel
from .blocks import *  # noqa: F403 (the slots and kinds the kernels name)
from .blocks import mat, vec

# YSTAT block: count, mean, variance (Welford's update, with the variance itself kept rather than the
# sum of squared deviations: the sum grows with the count and overflowed after some millions of
# extreme but accepted values; the variance stays below the square of the largest deviation)
MIN_VAR = 1e-12


@kernel
def _std(count, var):
    if count > 1.0 and var > MIN_VAR:
        return np.sqrt(var)
    return 1.0


@kernel
def normalise_input(mem, meta, x, present, dest, update):
    """Write the normalised input into ``dest``; with ``update``, then fold ``x`` into the stats.

    The stats are those from before this event, in the learn step as in a prediction, so that a
    learn step's forward is the very forward ``predict_one`` made for the same input. A feature that
    is not ``present`` reads as 0 after normalisation (its running mean).
    """
    n_in = meta[N_IN]
    if meta[NORM_X] == 0:
        for i in range(n_in):
            dest[i] = x[i] if present[i] != 0 else 0.0
        return
    mean = vec(mem, meta, XMEAN, 0)
    var = vec(mem, meta, XVAR, 0)
    count = vec(mem, meta, XCOUNT, 0)
    hyper = vec(mem, meta, HYPER, 0)
    clip = hyper[X_CLIP]
    for i in range(n_in):
        if present[i] == 0:
            dest[i] = 0.0
            continue
        v = x[i]
        if count[i] == 0.0:
            z = 0.0
        else:
            z = (v - mean[i]) / _std(count[i], var[i])
            if z > clip:
                z = clip
            elif z < -clip:
                z = -clip
            elif not np.isfinite(z):
                z = 0.0
        dest[i] = z
        if update:
            n = count[i] + 1.0
            d = v - mean[i]
            mean[i] += d / n
            var[i] += (d * (v - mean[i]) - var[i]) / n
            count[i] = n


@kernel
def normalise_target(mem, meta, y, update):
    if meta[NORM_Y] == 0 or meta[HEAD] == heads.SOFTMAX:
        return y
    s = vec(mem, meta, YSTAT, 0)
    if update:
        n = s[0] + 1.0
        d = y - s[1]
        s[1] += d / n
        s[2] += (d * (y - s[1]) - s[2]) / n
        s[0] = n
    return (y - s[1]) / _std(s[0], s[2])


@kernel
def denormalise_target(mem, meta, v):
    if meta[NORM_Y] == 0 or meta[HEAD] == heads.SOFTMAX:
        return v
    s = vec(mem, meta, YSTAT, 0)
    return v * _std(s[0], s[2]) + s[1]


@kernel
def embed_input(mem, meta, tokens, dest):
    """``dest`` = the sum of the embedding rows of the active tokens (-1: slot empty)."""
    e = meta[EMBED]
    if e == 0:
        return
    table = mat(mem, meta, EMB, 0)
    for k in range(e):
        dest[k] = 0.0
    for s in range(tokens.shape[0]):
        tok = int(tokens[s])
        if tok >= 0:
            row = table[tok]
            for k in range(e):
                dest[k] += row[k]
