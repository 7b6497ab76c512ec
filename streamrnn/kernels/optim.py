"""Optimizers (in place over flat parameter vectors) and gradient clipping."""

import numpy as np

from ._jit import kernel

SGD = 0
RMSPROP = 1
ADAM = 2


@kernel
def global_norm(grad):
    s = grad.dtype.type(0.0)
    for k in range(grad.shape[0]):
        s += grad[k] * grad[k]
    return np.sqrt(s)


@kernel
def sgd(params, grad, velocity, lr, momentum, scale):
    """SGD with (heavy-ball) momentum: v = momentum * v + g; p -= lr * v (g = scale * grad)."""
    f = params.dtype.type
    scale, momentum, lr = f(scale), f(momentum), f(lr)
    for k in range(params.shape[0]):
        v = momentum * velocity[k] + scale * grad[k]
        velocity[k] = v
        params[k] -= lr * v


@kernel
def rmsprop(params, grad, sq, lr, rho, eps, scale):
    """RMSProp: s = rho * s + (1 - rho) * g^2; p -= lr * g / (sqrt(s) + eps) (g = scale * grad)."""
    f = params.dtype.type
    scale, rho, rho_c, lr, eps = f(scale), f(rho), f(1.0 - rho), f(lr), f(eps)
    for k in range(params.shape[0]):
        g = scale * grad[k]
        s = rho * sq[k] + rho_c * g * g
        sq[k] = s
        params[k] -= lr * g / (np.sqrt(s) + eps)


@kernel
def adam(params, grad, m1, m2, lr, beta1, beta2, eps, step, scale):
    """Adam with bias correction; ``step`` counts updates from 1. The gradient is ``scale * grad``
    (clipping folds into this pass instead of costing one more over the gradient)."""
    f = params.dtype.type  # every constant in the loop typed like the arrays (float32 stays float32)
    c1 = 1.0 - float(beta1) ** step
    c2 = 1.0 - float(beta2) ** step
    lr_t = f(lr * np.sqrt(c2) / c1)
    eps_t = f(eps * np.sqrt(c2))
    b1, b2 = f(beta1), f(beta2)
    b1c, b2c = f(1.0 - beta1), f(1.0 - beta2)
    scale = f(scale)
    for k in range(params.shape[0]):
        g = scale * grad[k]
        a = b1 * m1[k] + b1c * g
        b = b2 * m2[k] + b2c * g * g
        m1[k] = a
        m2[k] = b
        params[k] -= lr_t * a / (np.sqrt(b) + eps_t)


@kernel
def flush_small(v):
    """Zero the entries of ``v`` smaller in magnitude than ``2**24`` times the dtype's smallest
    normal number.

    The optimizers' running averages of a parameter whose gradient stays zero (the input weights
    of an absent feature or category, of a rare character) decay geometrically into subnormal
    numbers, on which arithmetic is several times slower (docs/design.md). From the threshold to a subnormal takes at least 158 steps
    at a decay of 0.9, so a pass every :data:`FLUSH_EVERY` steps keeps them out, at a small
    fraction of one step's cost. What it drops is far below the dtype's resolution of a parameter.
    """
    f = v.dtype.type
    small = f(np.finfo(v.dtype).tiny * 2.0**24)
    zero = f(0.0)
    for k in range(v.shape[0]):
        x = v[k]
        v[k] = x if abs(x) >= small else zero


FLUSH_EVERY = 64
