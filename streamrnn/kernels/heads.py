"""Output heads and their losses.

A head maps the top hidden state to ``out = by + h @ wy``. Regression heads read ``out[0]`` as the
(normalised) prediction; the softmax head turns ``out`` into class probabilities. ``loss_grad``
writes dL/d(out) and returns the loss.
"""

import numpy as np

from ._jit import kernel

SQUARED = 0
HUBER = 1
SOFTMAX = 2


@kernel
def linear_forward(wy, by, h, out):
    O = out.shape[0]
    for k in range(O):
        out[k] = by[k]
    for j in range(h.shape[0]):
        hj = h[j]
        row = wy[j]
        for k in range(O):
            out[k] += hj * row[k]


@kernel
def softmax_inplace(z):
    m = z[0]
    for k in range(1, z.shape[0]):
        if z[k] > m:
            m = z[k]
    s = 0.0
    for k in range(z.shape[0]):
        e = np.exp(z[k] - m)
        z[k] = e
        s += e
    for k in range(z.shape[0]):
        z[k] /= s


@kernel
def loss_grad(head, out, target, delta, dout):
    """Loss of one step and its gradient with respect to the head's output ``out``.

    ``target`` is the normalised value (regression) or the class index (softmax).
    ``out`` holds the logits for the softmax head and is turned into probabilities in place.
    """
    if head == SOFTMAX:
        softmax_inplace(out)
        k = int(target)
        for c in range(out.shape[0]):
            dout[c] = out[c]
        dout[k] -= 1.0
        return -np.log(max(out[k], 1e-300))
    err = out[0] - target
    if head == HUBER and abs(err) > delta:
        dout[0] = delta if err > 0.0 else -delta
        return delta * (abs(err) - 0.5 * delta)
    dout[0] = err
    return 0.5 * err * err
