"""The forecaster's experts (see :mod:`streamrnn.forecaster`): which of its candidate forecasts
has the lowest recent absolute error."""

from ._jit import kernel
from .engine import last_output

# Decay of the experts' error sums (of the classic experts' too, see classic): about the last two
# hundred steps count. (0.99 let a trend expert that happened to lead on a spiky series for a few
# steps be chosen at the worst moments.)
DECAY = 0.995


@kernel
def update(mem, meta, scratch, err, weights, blends, toward, change):
    """Fold the last step's absolute error of each expert into the decayed sums ``err``; returns
    the index of the smallest (the first on ties).

    The experts forecast a change from the last value: ``weights[k] * predicted`` (the change the
    network predicted before learning this step, shrunk), then ``blends[j] * toward`` (a step of
    the last value toward the robust level, ``toward`` being their difference)."""
    predicted = last_output(mem, meta, scratch)
    n = weights.shape[0]
    best = 0
    for k in range(err.shape[0]):
        guess = weights[k] * predicted if k < n else blends[k - n] * toward
        err[k] = DECAY * err[k] + abs(change - guess)
        if err[k] < err[best]:
            best = k
    return best
