"""Numba kernels: plain functions over preallocated arrays.

One module per recurrent cell (:mod:`rnn`, :mod:`gru`, :mod:`lstm`), each with a forward step and a
backward pass through a stored window of activations. :mod:`heads` holds the output layers and their
losses, :mod:`optim` the optimizers, and :mod:`engine` ties them into one online TBPTT step over the
flat state arrays that the estimators own (:mod:`streamrnn.layout` describes that state).
"""

from . import _cache, linalg

_cache.check(linalg.exp)  # before any kernel is loaded from numba's cache: see _cache
