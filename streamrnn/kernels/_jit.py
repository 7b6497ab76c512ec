"""The jit decorators of the kernels."""

from numba import njit
from numba.core.compiler import Compiler

# Fast-math without 'nnan'/'ninf': the kernels test for non-finite gradients and must see them.
# 'reassoc' lets reductions vectorise; results stay deterministic for a given machine code.
FASTMATH = {"contract", "arcp", "reassoc", "nsz", "afn"}

# error_model="numpy": division does not raise, so loops containing it vectorise (about 2x on Adam).
kernel = njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)


class _DisjointCompiler(Compiler):
    """numba's compiler, with every pointer argument of the compiled function marked ``noalias``
    (numba's ``Flags.noalias``, which the decorators do not expose)."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True  # a fresh Flags object per compilation: no other function sees it
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


# For kernels whose array arguments never share memory that one of them writes; every caller
# must keep to that. LLVM then needs no run-time overlap checks before it vectorises a loop.
# Those checks are what kept the per-step loops of a backward pass scalar: with the step loop
# running backwards in time, LLVM hoists them out of it in a form that always reports an
# overlap (a negative stride), so the vector loop never ran (docs/benchmarks.md, "State layout",
# has what it cost; the results are identical).
disjoint = njit(
    cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True, pipeline_class=_DisjointCompiler
)

# Strict IEEE arithmetic (no fast-math flags): a function built with this computes the same bits
# wherever it is inlined and however the loop around it is vectorised, so that a value one loop
# stored can be recomputed by another (see linalg.tanh_exact).
strict = njit(cache=True, error_model="numpy", nogil=True)


def entry_point(dispatcher, *args):
    """``dispatcher``'s compiled function for exactly the types of ``args`` (compiled now if it
    is not yet), to be called with arguments of those types only.

    A call through the dispatcher first works out which compiled version fits its arguments, close
    to half of what a call costs (docs/design.md). Every model's state arrays of one
    dtype have the same types (see ``streamrnn.base.KERNELS``), so a model can skip that step on
    every event. Falls back to the dispatcher where numba exposes no entry point.
    """
    from numba import typeof

    try:
        key = tuple(typeof(a) for a in args)
        if key not in dispatcher.overloads:
            dispatcher.compile(key)
        return dispatcher.overloads[key].entry_point
    except (AttributeError, KeyError, TypeError):
        return dispatcher
