"""The anomaly detector's error distribution: the last ``N`` (scaled) errors, kept both in arrival
order (``ring``, to know which one leaves) and sorted (``ordered``, to read ranks and quantiles),
and the tail probability of a new error among them.

``counts`` holds ``[filled, at]``: how many of the ``N`` slots hold an error, and the ring slot the
next one goes to. Inserting moves at most ``N`` values in place: no allocation per event.
"""

import math

from ._jit import kernel


@kernel
def _lower_bound(ordered, n, value):
    """The first index of ``ordered[:n]`` whose value is not below ``value``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if ordered[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _upper_bound(ordered, n, value):
    """The first index of ``ordered[:n]`` whose value is above ``value``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if ordered[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def push(ring, ordered, counts, value):
    """Add ``value``; once ``N`` are kept, the oldest leaves. Equal values leave from the end of
    their run and join at it, so a window of mostly equal values (the run lengths of a series
    that never repeats itself) moves nothing."""
    n, at, cap = counts[0], counts[1], ring.shape[0]
    if n == cap:  # take the oldest out of the sorted copy
        k = _upper_bound(ordered, n, ring[at]) - 1
        for j in range(k, n - 1):
            ordered[j] = ordered[j + 1]
        n -= 1
    k = _upper_bound(ordered, n, value)
    for j in range(n, k, -1):
        ordered[j] = ordered[j - 1]
    ordered[k] = value
    ring[at] = value
    counts[0] = n + 1
    counts[1] = (at + 1) % cap


@kernel
def _fit(ordered, n, quantile):
    """``(u, sigma, m)``: the ``quantile`` of the ``n`` kept, the mean excess over it of those
    above (the scale of the exponential tail; the quantile itself while none is above, or 1)
    and how many are above."""
    u = ordered[int(quantile * (n - 1))]
    first = _lower_bound(ordered, n, u)
    while first < n and ordered[first] <= u:
        first += 1
    excess = 0.0
    for j in range(first, n):
        excess += ordered[j] - u
    m = n - first
    sigma = excess / m if m > 0 else 0.0
    if sigma <= 0.0:
        sigma = u if u > 0.0 else 1.0
    return u, sigma, m


@kernel
def log10_tail(ordered, n, quantile, value):
    """``log10`` of the probability of an error at least ``value`` among the ``n`` kept: the share
    at least as large (counting the new one, so never 0) up to their ``quantile``; beyond it, the
    share over the quantile times an exponential tail fitted to the excesses over it (peaks over
    threshold), so that errors larger than any kept still get distinct probabilities."""
    u = ordered[int(quantile * (n - 1))]
    if value <= u:
        above = n - _lower_bound(ordered, n, value)
        return math.log10((above + 1.0) / (n + 1.0))
    u, sigma, m = _fit(ordered, n, quantile)
    return math.log10((m + 1.0) / (n + 1.0)) - (value - u) / sigma / math.log(10.0)


@kernel
def capped(ordered, n, quantile, value, factor):
    """``value``, or ``factor`` times the ``quantile`` of the ``n`` kept if that is smaller: what
    an error adds to the distribution (see :class:`streamrnn.RecurrentAnomalyDetector`)."""
    u = ordered[int(quantile * (n - 1))]
    return min(value, factor * u) if u > 0.0 else value
