"""Numba kernels: plain functions over preallocated arrays.

One module per recurrent cell (:mod:`rnn`, :mod:`gru`, :mod:`lstm`, :mod:`mingru`), each with a
forward step and a backward pass through a stored window of activations. :mod:`heads` holds the
output layers and their losses, :mod:`optim` the optimizers, :mod:`normalise` the running input
and target statistics, :mod:`forward` the step through the layer stack, :mod:`gradient` the
backward pass through a window and the update, and :mod:`engine` ties them into one online TBPTT
step over the flat state arrays that the estimators own (:mod:`blocks` names their blocks and
:mod:`streamrnn.layout` lays them out).
"""

from . import _cache, linalg

_cache.check(linalg.exp)  # before any kernel is loaded from numba's cache: see _cache
