"""Keep numba's on-disk cache of the kernels consistent with their sources.

Numba checks a cached function against its own source file only (its modification time and size).
The kernels call each other across modules and LLVM inlines the callees, so the cached machine
code of ``engine.learn_event`` holds the LSTM's backward pass from ``lstm.py``. After an edit of
``lstm.py`` alone (or a ``git pull`` into an editable install that changed only it), numba would
load the old engine code and the model would silently run the old backward pass.

So the package stamps its cache directory with a digest of all the kernel sources and, when the
digest differs, deletes numba's index and data files there before anything is loaded from them.
"""

import hashlib
import os
from pathlib import Path

STAMP = "streamrnn-kernels.sha256"


def sources_digest(directory) -> str:
    """SHA-256 over the names and contents of the ``*.py`` files in ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.py")):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale(cache_dir, digest) -> bool:
    """Delete numba's cache files (``*.nbi``, ``*.nbc``) in ``cache_dir`` unless its stamp says
    they were built from sources with ``digest``; then stamp it. Returns whether files were
    dropped. A directory that cannot be read or written is left alone (numba then compiles or
    falls back to another cache location on its own)."""
    stamp = os.path.join(cache_dir, STAMP)
    try:
        with open(stamp, encoding="ascii") as f:
            if f.read().strip() == digest:
                return False
    except (OSError, ValueError):
        pass
    try:
        os.makedirs(cache_dir, exist_ok=True)
        for name in os.listdir(cache_dir):
            if name.endswith((".nbi", ".nbc")):
                try:
                    os.remove(os.path.join(cache_dir, name))
                except FileNotFoundError:  # another process got there first
                    pass
        with open(stamp, "w", encoding="ascii") as f:
            f.write(digest)
    except OSError:
        return False
    return True


def check(any_kernel) -> None:
    """Drop the kernels' cache if their sources changed since it was written. ``any_kernel``: a
    jitted function of this package (all of them share one cache directory)."""
    from numba.core.caching import FunctionCache

    try:
        cache_dir = FunctionCache(any_kernel.py_func)._cache_path
    except (AttributeError, RuntimeError):  # numba found no usable cache location
        return
    drop_stale(cache_dir, sources_digest(Path(__file__).parent))
