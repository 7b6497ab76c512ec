"""A state format that is safe to read from anywhere: no pickle, validated before use.

The runner's checkpoints, the per-key directory store and the Kafka changelog all hold models in
this format, because their bytes come from files and topics that others may write. A pickle runs
whatever code its bytes name; this format holds only data, and a reader checks every part of it
before it builds anything:

========  ===================================================================================
bytes     what
========  ===================================================================================
4         ``SRNS``
1         format version (:data:`VERSION`)
1         flags: bit 0 set when the digest is an HMAC (a key was given)
4         header length, big-endian
header    UTF-8 JSON: the kind of document, its fields, and the list of arrays
          ``[name, dtype, shape]`` that follow
payload   the arrays' raw bytes, little-endian, in the header's order
32        SHA-256 (or HMAC-SHA256 with a key) of everything before it
========  ===================================================================================

A model document names its class (one of the streamrnn estimators), its constructor parameters
(which the constructor validates), and its state; :func:`model_from` checks that the state's
shapes and counters follow from the parameters and that every number is finite, then builds the
model. Anything else is refused with :class:`StateError`, a ``ValueError``.

Plain ``pickle.dumps(model)`` keeps working for Python users, for data they trust.

>>> import streamrnn
>>> from streamrnn import persist
>>> model = streamrnn.RecurrentRegressor(hidden_size=4, seed=0)
>>> model.learn_one({"x": 1.0}, 2.0)
>>> blob = persist.dumps(model)
>>> persist.loads(blob).predict_one({"x": 1.0}) == model.predict_one({"x": 1.0})
True
>>> persist.loads(blob[:-1] + bytes([blob[-1] ^ 1]))
Traceback (most recent call last):
...
streamrnn.persist.StateError: state checksum does not match: the bytes were changed or cut

"""

from __future__ import annotations

import collections
import functools
import hashlib
import hmac
import inspect
import json
import math
import os
import struct

import numpy as np

MAGIC = b"SRNS"
VERSION = 1
FLAG_HMAC = 1
_PREAMBLE = struct.Struct(">4sBBI")
_DIGEST = 32
_DTYPES = {"<f4": np.float32, "<f8": np.float64, "<i8": np.int64, "|u1": np.uint8}
_MAX_DEPTH = 24
KEY_ENV = "STREAMRNN_STATE_KEY"


class StateError(ValueError):
    """Bytes that are not a valid streamrnn state: refused before anything is built from them."""


# ---------------------------------------------------------------------------------- documents
def _digest(body: bytes, secret: bytes | None) -> bytes:
    if secret:
        return hmac.new(secret, body, hashlib.sha256).digest()
    return hashlib.sha256(body).digest()


def pack_document(header: dict, arrays=(), secret: bytes | None = None) -> bytes:
    """Bytes of a document: ``header`` (JSON-encodable) and the ``(name, array)`` pairs."""
    listed, payload = [], []
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        dtype = a.dtype.newbyteorder("<").str
        if dtype not in _DTYPES:
            raise StateError(f"array {name!r} has unsupported dtype {a.dtype}")
        listed.append([name, dtype, list(a.shape)])
        payload.append(a.astype(dtype, copy=False).tobytes())
    head = json.dumps({**header, "arrays": listed}, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode("utf-8")
    body = _PREAMBLE.pack(MAGIC, VERSION, FLAG_HMAC if secret else 0, len(head)) + head + b"".join(payload)
    return body + _digest(body, secret)


def unpack_document(blob, secret: bytes | None = None) -> tuple[dict, dict]:
    """``(header, {name: array})`` of a document, after checking its checksum (or HMAC), its
    version and the arrays' list against the payload. Raises :class:`StateError`."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise StateError(f"state must be bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) < _PREAMBLE.size + _DIGEST:
        raise StateError("state is too short to be a streamrnn state")
    magic, version, flags, head_len = _PREAMBLE.unpack_from(blob)
    if magic != MAGIC:
        if blob[:1] == b"\x80":
            raise StateError("this is a pickle, not a streamrnn state: pickles are never loaded, "
                             "since they can run code (write the state again with this version)")
        raise StateError("not a streamrnn state (bad magic bytes)")
    if version != VERSION:
        raise StateError(f"state format version {version} is not supported (this streamrnn reads {VERSION})")
    body, digest = blob[:-_DIGEST], blob[-_DIGEST:]
    signed = bool(flags & FLAG_HMAC)
    if flags & ~FLAG_HMAC:
        raise StateError(f"unknown state flags {flags:#x}")
    if signed and not secret:
        raise StateError(f"state is signed with a key: give the key (--state-key-file or {KEY_ENV})")
    if secret and not signed:
        raise StateError("state is not signed, but a key is set: refusing unsigned state")
    if not hmac.compare_digest(digest, _digest(body, secret if signed else None)):
        if signed:
            raise StateError("state signature does not match: forged, changed, or signed with another key")
        raise StateError("state checksum does not match: the bytes were changed or cut")
    end = _PREAMBLE.size + head_len
    if end > len(body):
        raise StateError("state header runs past the end")
    try:
        header = json.loads(body[_PREAMBLE.size:end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StateError(f"state header is not valid JSON: {str(e)[:80]}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise StateError("state header is not a document")
    arrays, at = {}, end
    for item in header.pop("arrays"):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and item[1] in _DTYPES and isinstance(item[2], list)
                and all(type(s) is int and 0 <= s < 2**40 for s in item[2])):
            raise StateError(f"bad array entry in the state header: {str(item)[:80]}")
        name, dtype, shape = item
        if name in arrays:
            raise StateError(f"array {name!r} listed twice")
        n = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if at + n > len(body):
            raise StateError(f"array {name!r} runs past the end of the state")
        a = np.frombuffer(body, dtype=np.dtype(dtype), count=math.prod(shape), offset=at).reshape(shape)
        arrays[name] = a
        at += n
    if at != len(body):
        raise StateError(f"{len(body) - at} bytes after the last array")
    return header, arrays


def state_key(path: str | None = None, environ=None) -> bytes | None:
    """The HMAC key for state: the contents of ``path`` (``--state-key-file``), else the
    ``STREAMRNN_STATE_KEY`` environment variable, else None (unsigned, checksummed state)."""
    if path:
        try:
            with open(path, "rb") as f:
                key = f.read().strip()
        except OSError as e:
            raise StateError(f"cannot read the state key file {path!r}: {e.strerror}") from None
        if not key:
            raise StateError(f"the state key file {path!r} is empty")
        return key
    value = (os.environ if environ is None else environ).get(KEY_ENV)
    return value.encode() if value else None


# ---------------------------------------------------------------------------------- values
def encode(value, objects=False, depth=0):
    """A value as JSON: tuples, dicts with any keys, and non-finite floats are tagged (a JSON
    object is always a tag). With ``objects``, sets, defaultdicts of a known factory and the
    objects of River's metrics and statistics too (see :func:`encode_metric`)."""
    if depth > _MAX_DEPTH:
        raise StateError("value nested too deep to save")
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return value
    if isinstance(value, str):  # e.g. numpy's str_, as feature names from a numpy array
        return str(value)
    if kind is float or isinstance(value, np.floating):
        v = float(value)
        return v if math.isfinite(v) else {"float": repr(v)}
    if isinstance(value, np.integer):
        return int(value)
    if kind is tuple:
        return {"tuple": [encode(v, objects, depth + 1) for v in value]}
    if kind is list:
        return [encode(v, objects, depth + 1) for v in value]
    if kind is dict:
        return {"dict": [[encode(k, objects, depth + 1), encode(v, objects, depth + 1)] for k, v in value.items()]}
    if objects:
        if kind is set:
            return {"set": [encode(v, objects, depth + 1) for v in sorted(value, key=repr)]}
        if kind is collections.defaultdict:
            factory = _FACTORY_NAMES.get(_factory_id(value.default_factory))
            if factory is None:
                raise StateError(f"cannot save a defaultdict of {value.default_factory!r}")
            return {"defaultdict": factory,
                    "items": [[encode(k, objects, depth + 1), encode(v, objects, depth + 1)] for k, v in value.items()]}
        name = _allowed_class_name(kind)
        if name is not None:
            return {"object": name, "state": encode(dict(vars(value)), objects, depth + 1)}
    raise StateError(f"cannot save a value of type {kind.__name__}")


def decode(value, objects=False, depth=0):
    """The inverse of :func:`encode`; raises :class:`StateError` on anything it would not write."""
    if depth > _MAX_DEPTH:
        raise StateError("state value nested too deep")
    kind = type(value)
    if value is None or kind in (bool, str, int):
        return value
    if kind is float:
        return value
    if kind is list:
        return [decode(v, objects, depth + 1) for v in value]
    if kind is not dict or len(value) not in (1, 2):
        raise StateError(f"unexpected value in state: {str(value)[:60]}")
    if len(value) == 1:
        (tag, body), = value.items()
        if tag == "tuple" and type(body) is list:
            return tuple(decode(v, objects, depth + 1) for v in body)
        if tag == "dict" and type(body) is list:
            return _pairs(body, {}, objects, depth)
        if tag == "float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if objects and tag == "set" and type(body) is list:
            return {_hashable(decode(v, objects, depth + 1)) for v in body}
    elif objects and set(value) == {"defaultdict", "items"} and value["defaultdict"] in _FACTORIES:
        return _pairs(value["items"], collections.defaultdict(_FACTORIES[value["defaultdict"]]), objects, depth)
    elif objects and set(value) == {"object", "state"}:
        cls = _allowed_class(value["object"])
        state = decode(value["state"], objects, depth + 1)
        if type(state) is not dict or not all(type(k) is str for k in state):
            raise StateError(f"bad state for {value['object']!r}")
        obj = object.__new__(cls)
        vars(obj).update(state)
        return obj
    raise StateError(f"unexpected value in state: {str(value)[:60]}")


def _hashable(v):
    try:
        hash(v)
    except TypeError:
        raise StateError("unhashable key in state") from None
    return v


def _pairs(body, out, objects, depth):
    if type(body) is not list:
        raise StateError("bad mapping in state")
    for pair in body:
        if type(pair) is not list or len(pair) != 2:
            raise StateError("bad mapping entry in state")
        k = _hashable(decode(pair[0], objects, depth + 1))
        if k in out:
            raise StateError(f"key {str(k)[:40]!r} twice in a mapping")
        out[k] = decode(pair[1], objects, depth + 1)
    return out


# River's confusion matrices keep defaultdicts of these factories
def _float_table():
    return collections.defaultdict(float)


_FACTORIES = {"float": float, "int": int, "float_table": _float_table}


def _factory_id(factory):
    if isinstance(factory, functools.partial) and factory.func is collections.defaultdict and factory.args == (float,):
        return _float_table
    return factory


_FACTORY_NAMES = {f: name for name, f in _FACTORIES.items()}


# the packages whose classes a checkpoint's metric may hold: River's metrics and statistics, and
# streamrnn's own metrics
_OBJECT_PACKAGES = (["river", "metrics"], ["river", "stats"], ["streamrnn", "metrics"])


def _allowed_class_name(cls) -> str | None:
    """``module:qualname`` of a class of one of the ``_OBJECT_PACKAGES``, or None."""
    module = getattr(cls, "__module__", "")
    if module.split(".")[:2] in _OBJECT_PACKAGES and "<" not in cls.__qualname__:
        return f"{module}:{cls.__qualname__}"
    return None


def _allowed_class(name):
    import importlib

    if type(name) is not str or ":" not in name:
        raise StateError("bad class name in state")
    module, _, qualname = name.partition(":")
    if module.split(".")[:2] not in _OBJECT_PACKAGES or not qualname.isidentifier():
        raise StateError(f"class {name!r} may not appear in state")
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError):
        raise StateError(f"unknown class {name!r} in state") from None
    # a class, defined where the name says (not something imported there), without custom restore
    if (not isinstance(cls, type) or cls.__module__ != module or "__setstate__" in vars(cls)
            or getattr(cls, "__slots__", None)):
        raise StateError(f"class {name!r} may not appear in state")
    return cls


def encode_metric(metric):
    """A River metric as JSON, or None when it holds something the format does not carry."""
    try:
        return encode(metric, objects=True)
    except StateError:
        return None


def decode_metric(value):
    from river import metrics

    metric = decode(value, objects=True)
    if not isinstance(metric, metrics.base.Metric):
        raise StateError("the checkpoint's metric is not a River metric")
    return metric


# ---------------------------------------------------------------------------------- models
def _classes():
    from .classifier import RecurrentClassifier
    from .detector import RecurrentAnomalyDetector
    from .forecaster import RecurrentForecaster
    from .regressor import RecurrentRegressor

    return {c.__name__: c for c in (RecurrentRegressor, RecurrentClassifier, RecurrentForecaster,
                                    RecurrentAnomalyDetector)}


@functools.lru_cache(maxsize=None)
def _param_names(cls) -> tuple:
    return tuple(p for p in inspect.signature(cls.__init__).parameters if p != "self")


def model_parts(model) -> tuple[dict, list]:
    """``(header fields, arrays)`` of a streamrnn estimator."""
    cls = type(model)
    if _classes().get(cls.__name__) is not cls:
        raise StateError(f"cannot save a {cls.__name__}: only streamrnn's estimators")
    if hasattr(model, "_state_parts"):  # an estimator made of estimators: it says what it holds
        state, arrays = model._state_parts(model_parts)
        return {"class": cls.__name__, "params": encode([getattr(model, k) for k in _param_names(cls)]),
                "state": state}, arrays
    state = model.__getstate__()
    params = [state.pop(k) for k in _param_names(cls)]  # in the constructor's order
    arrays = []
    for name, dtype in model._STATE_ARRAYS.items():
        raw = state.pop(name)
        if raw is not None:
            arrays.append((name, np.frombuffer(raw, dtype=model._mem.dtype if dtype is None else dtype)))
    if state.get("_cfg") is not None:
        state["_cfg"] = list(vars(state["_cfg"]).values())  # in the field order
    return {"class": cls.__name__, "params": encode(params), "state": encode(state)}, arrays


def model_from(fields: dict, arrays: dict):
    """The estimator a document describes, once everything in it is checked (:class:`StateError`
    otherwise)."""
    try:
        return _model_from(fields, arrays)
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as e:
        raise StateError(f"invalid model state: {str(e)[:120]}") from None


def _model_from(fields, arrays):
    if type(fields) is not dict:
        raise StateError("model header is not a mapping")
    cls = _classes().get(fields.get("class"))
    if cls is None:
        raise StateError(f"unknown model class {str(fields.get('class'))[:40]!r}")
    values = fields.get("params")
    names = _param_names(cls)
    if type(values) is not list or len(values) != len(names):
        raise StateError(f"{cls.__name__} parameters do not match its constructor")
    params = dict(zip(names, values))
    for k, v in params.items():
        if v is not None and type(v) not in (bool, int, float, str) and not (
                type(v) is list and len(v) <= 8 and all(type(e) is int for e in v)):  # (a forecaster's periods)
            raise StateError(f"parameter {k!r} has type {type(v).__name__}")
    try:
        model = cls(**params)
    except (ValueError, TypeError) as e:
        raise StateError(f"invalid {cls.__name__} parameters: {e}") from None
    if hasattr(model, "_restore_parts"):
        model._restore_parts(fields.get("state"), arrays, model_from)
        return model
    state = decode(fields.get("state"))
    if type(state) is not dict:
        raise StateError("model state is not a mapping")
    expected = set(model.__getstate__()) - set(names)
    for name in model._STATE_ARRAYS:
        if name in arrays:
            state[name] = arrays[name]
        elif name in state:
            raise StateError(f"{name} must be an array")
        else:
            state[name] = None
    if set(state) != expected or set(arrays) - set(model._STATE_ARRAYS):
        raise StateError(f"{cls.__name__} state has other fields than expected")
    model._restore_checked(state)
    return model


def dumps(model, secret: bytes | None = None, **fields) -> bytes:
    """A streamrnn estimator as bytes of this format, signed with ``secret`` (an HMAC key) if
    given (``fields``: more header entries)."""
    header, arrays = model_parts(model)
    return pack_document({"kind": "model", **fields, **header}, arrays, secret)


def loads(blob, secret: bytes | None = None, with_fields=False):
    """The estimator in ``blob``, after every check (:class:`StateError` otherwise); with
    ``with_fields``, ``(model, header)``."""
    header, arrays = unpack_document(blob, secret)
    if header.get("kind") != "model":
        raise StateError(f"expected a model, got a {str(header.get('kind'))[:20]!r} document")
    model = model_from(header, arrays)
    return (model, header) if with_fields else model
