"""The one jit decorator every kernel uses."""

from numba import njit

# Fast-math without 'nnan'/'ninf': the kernels test for non-finite gradients and must see them.
# 'reassoc' lets reductions vectorise; results stay deterministic for a given machine code.
FASTMATH = {"contract", "arcp", "reassoc", "nsz", "afn"}

# error_model="numpy": division does not raise, so loops containing it vectorise (about 2x on Adam).
kernel = njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)

# Strict IEEE arithmetic (no fast-math flags): a function built with this computes the same bits
# wherever it is inlined and however the loop around it is vectorised, so that a value one loop
# stored can be recomputed by another (see linalg.tanh_exact).
strict = njit(cache=True, error_model="numpy", nogil=True)
