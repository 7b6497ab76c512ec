"""Text as a stream of symbols: characters, whitespace-delimited words, or regex tokens.

Each event frames next-symbol prediction: ``{"prev": <the previous symbol>, "next": <symbol>}``
(with ``context=k``: ``prev1`` … ``prevk``, the most recent first). The first symbol has no
previous one (the field is missing), so a model pays for every symbol from the first. For a
recurrent model ``context=1`` is enough: the state carries the rest.

:func:`iter_text` gives the same framing as River ``(x, y)`` pairs, for
``river.evaluate.progressive_val_score``.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
from typing import Iterator

from .base import Event, OnePartitionSource

MODES = {"chars": None, "words": r"\S+"}


def _chunks(text) -> Iterator[str]:
    """Strings from a path, an open text file, a string, or an iterable of strings."""
    if isinstance(text, (str, os.PathLike)) and os.path.exists(text):
        with open(text, encoding="utf-8") as f:
            yield from _chunks(f)
        return
    if isinstance(text, str):
        yield text
        return
    if isinstance(text, io.TextIOBase):
        while True:
            chunk = text.read(1 << 16)
            if not chunk:
                return
            yield chunk
        return
    for piece in text:
        yield piece


def iter_symbols(text, mode: str = "chars") -> Iterator[str]:
    """The symbols of ``text``: characters (code points), words (``\\S+``), or the matches of a
    regular expression given as ``mode``. Regex tokens never straddle the strings of an iterable,
    except that a chunked file is re-joined at whitespace."""
    pattern = MODES.get(mode, mode)
    if pattern is None:
        for chunk in _chunks(text):
            yield from chunk
        return
    regex = re.compile(pattern)
    carry = ""
    for chunk in _chunks(text):
        buf = carry + chunk
        # keep an unfinished tail (after the last whitespace) for the next chunk
        cut = max(buf.rfind(" "), buf.rfind("\n"), buf.rfind("\t"))
        head, carry = (buf[: cut + 1], buf[cut + 1 :]) if cut >= 0 else ("", buf)
        for m in regex.finditer(head):
            yield m.group(0)
    for m in regex.finditer(carry):
        yield m.group(0)


def iter_text(text, mode: str = "chars", context: int = 1) -> Iterator[tuple[dict, str]]:
    """``(x, y)`` pairs for next-symbol prediction over ``text``.

    >>> list(iter_text("abc"))
    [({}, 'a'), ({'prev': 'a'}, 'b'), ({'prev': 'b'}, 'c')]
    >>> list(iter_text("héé", context=2))[-1]
    ({'prev1': 'é', 'prev2': 'h'}, 'é')
    """
    history: collections.deque = collections.deque(maxlen=context)
    for symbol in iter_symbols(text, mode):
        if context == 1:
            x = {"prev": history[0]} if history else {}
        else:
            x = {f"prev{k + 1}": s for k, s in enumerate(reversed(history))}
        yield x, symbol
        history.append(symbol)


class TextSource(OnePartitionSource):
    """A UTF-8 text file (or any iterable of strings) as JSON events for the runner: run it with
    ``--task classify --target next``."""

    def __init__(self, text, mode: str = "chars", context: int = 1):
        self.text = text
        self.mode = mode
        self.context = context
        self.topic = str(text) if isinstance(text, (str, os.PathLike)) else "text"

    def __iter__(self) -> Iterator[Event]:
        for offset, (x, y) in self._unread(iter_text(self.text, self.mode, self.context)):
            record = dict(x)
            record["next"] = y
            yield Event(value=json.dumps(record, ensure_ascii=False).encode(), topic=self.topic, offset=offset)
