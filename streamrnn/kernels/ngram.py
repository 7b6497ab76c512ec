"""Direct n-gram connections for the softmax head (Mikolov's RNN-ME).

Each of the last ``n`` input symbols' contexts (orders 1..n: the current symbol, the current and
the previous, ...) is hashed to a row of a weight table; those rows are added to the logits of
the softmax. The rows are learned by plain SGD on every event, so frequent contexts get sharp
predictions after a few occurrences, long before the recurrent network has learned them, and the
network is left to learn what the counts cannot. Cost per event: ``n`` row reads and writes of the
active classes, whatever the table size.
"""

import numpy as np

from ._jit import kernel

# FNV-1a style constants, as signed int64 (the products wrap modulo 2**64)
_OFFSET = np.int64(-3750763034362895579)
_PRIME = np.int64(1099511628211)
_POSITIVE = np.int64(0x7FFFFFFFFFFFFFFF)


@kernel
def context_buckets(hist, n_buckets, out):
    """``out[k]`` = the table row of the order-(k + 1) context.

    ``hist[0]`` is the current input symbol's token, ``hist[j]`` the token ``j`` steps back
    (-1 where there is none). Orders share the table; a context of order k hashes its k tokens.
    """
    h = _OFFSET
    for k in range(out.shape[0]):
        h = (h ^ np.int64(int(hist[k]) + 2)) * _PRIME
        mixed = (h ^ (h >> np.int64(29))) & _POSITIVE
        out[k] = mixed % n_buckets


@kernel
def add_rows(table, buckets, n_out, out):
    """``out[:n_out] += table[b, :n_out]`` for every bucket ``b``."""
    for k in range(buckets.shape[0]):
        row = table[int(buckets[k])]
        for c in range(n_out):
            out[c] += row[c]


@kernel
def sgd_rows(table, visits, buckets, dout, n_out, lr):
    """One SGD step on the rows used: ``table[b] -= lr_b * dL/dlogits``, with a step that shrinks
    as ``lr / sqrt(visits of b)``: a context's first occurrences move its row a lot (like a fresh
    count), later ones refine it (like an average), as AdaGrad would with one rate per row."""
    for k in range(buckets.shape[0]):
        b = int(buckets[k])
        n = visits[b] + 1.0
        visits[b] = n
        step = table.dtype.type(lr / np.sqrt(n))
        row = table[b]
        for c in range(n_out):
            row[c] -= step * dout[c]
