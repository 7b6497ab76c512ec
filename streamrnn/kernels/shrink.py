"""Shrinkage of a forecaster's predicted change: which weight of the change has the lowest
recent absolute error (see :mod:`streamrnn.forecaster`)."""

from ._jit import kernel
from .engine import last_output


@kernel
def update(mem, meta, scratch, err, weights, decay, change):
    """Fold the last step's absolute error of each shrunk prediction ``weights[k] * predicted``
    of ``change`` into the decayed sums ``err``; returns the index of the smallest (the first
    on ties). ``predicted`` is the change the network predicted before learning this step."""
    predicted = last_output(mem, meta, scratch)
    best = 0
    for k in range(err.shape[0]):
        err[k] = decay * err[k] + abs(change - weights[k] * predicted)
        if err[k] < err[best]:
            best = k
    return best
