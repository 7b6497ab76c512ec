"""The exception a streamrnn estimator raises for input it cannot take."""


class BadInput(ValueError):
    """An input or target that an estimator refuses (not finite, out of range, of an unsupported
    type, ...). The model is left exactly as it was. The streaming runner dead-letters the event
    that caused it; any other exception from a model is a bug, and stops the job."""
