"""Break the code on purpose and check that a test (not a doctest) notices.

    python tests/mutations.py              # every mutation (several minutes each: kernels recompile)
    python tests/mutations.py adam-bias    # one, by name

Each mutation is applied to a copy of the checkout, and the tests that need no broker run there
(``-x``: the first failure is enough); the table says which test caught it. A mutation that
passes every test is a hole in the suite. Not collected by pytest (the name does not start with
``test_``): it is a tool for reviewing the tests, run by hand.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTS = ["tests/test_gradients.py", "tests/test_learning.py", "tests/test_estimators.py", "tests/test_encoder.py",
         "tests/test_adversarial.py", "tests/test_cell_golden.py", "tests/test_runner_files.py",
         "tests/test_keyed_files.py"]
SOFTMAX = ["tests/test_gradients.py", "-k", "softmax"]

# name, file, the text replaced, its replacement, the tests to run (default: TESTS)
MUTATIONS = [
    ("sgd-ascends", "streamrnn/kernels/optim.py", "params[k] -= lr * v", "params[k] += lr * v", None),
    ("rmsprop-ascends", "streamrnn/kernels/optim.py", "params[k] -= lr * g / (np.sqrt(s) + eps)",
     "params[k] += lr * g / (np.sqrt(s) + eps)", None),
    ("adam-bias", "streamrnn/kernels/optim.py", "lr_t = f(lr * np.sqrt(c2) / c1)", "lr_t = f(lr)", None),
    ("clipping-skipped", "streamrnn/kernels/gradient.py",
     "scale = clip / norm if clip > 0.0 and norm > clip else 1.0", "scale = 1.0", None),
    ("target-variance", "streamrnn/kernels/normalise.py", "s[2] += (d * (y - s[1]) - s[2]) / n",
     "s[2] += (d * d - s[2]) / n", None),
    ("forget-bias-0", "streamrnn/cells.py", "bx[hidden:2 * hidden] = 1.0", "bx[hidden:2 * hidden] = 0.0", None),
    ("rollout-no-feedback", "streamrnn/kernels/engine.py", "xs[s, diff_col] = change", "xs[s, diff_col] = 0.0",
     None),
    ("no-differencing-negated", "streamrnn/forecaster.py",
     "self._learn_encoded(x, self._last_y, self._last_change, y)",
     "self._learn_encoded(x, self._last_y, self._last_change, -y)", None),
    ("metric-not-restored", "streamrnn/checkpoint.py", "        metric = saved.metric\n", "", None),
    ("pickle-drops-a-row", "streamrnn/cells.py", "else min(lo + 1, hi)), hi", "else min(lo + 2, hi)), hi", None),
    ("lstm-backward-sign", "streamrnn/kernels/lstm.py", "d_g[j] = dc * ig * (one - gg * gg)",
     "d_g[j] = -dc * ig * (one - gg * gg)", SOFTMAX),
    ("gru-backward-sign", "streamrnn/kernels/gru.py", "dan = dh * (one - z) * (one - n * n)",
     "dan = -dh * (one - z) * (one - n * n)", SOFTMAX),
    ("rnn-backward-sign", "streamrnn/kernels/rnn.py", "da[j] = (dh_in[j] + dh_next[j]) * (one - h[j] * h[j])",
     "da[j] = -(dh_in[j] + dh_next[j]) * (one - h[j] * h[j])", SOFTMAX),
    ("mingru-backward-sign", "streamrnn/kernels/mingru.py", "da_c[j] = dh * z", "da_c[j] = -dh * z", SOFTMAX),
]


def run(name, path, old, new, tests):
    with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as tmp:
        copy = pathlib.Path(tmp) / "src"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build"))
        target = copy / path
        text = target.read_text()
        if text.count(old) != 1:
            return f"NOT APPLIED: {old!r} occurs {text.count(old)} times in {path}"
        target.write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy), "NUMBA_CACHE_DIR": str(pathlib.Path(tmp) / "numba")}
        # python -m puts the copy first on the path, ahead of the installed (editable) package
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                 "--no-header", *(tests or TESTS)],
                                cwd=copy, env=env, capture_output=True, text=True)
        failed = re.findall(r"^FAILED (\S+)", result.stdout, re.M)
        if result.returncode == 0:
            return "NOT CAUGHT"
        return failed[0] if failed else f"pytest exit {result.returncode}: {result.stdout[-300:]}"


def main(argv):
    chosen = [m for m in MUTATIONS if not argv or m[0] in argv]
    print(f"{'mutation':<26} caught by")
    holes = 0
    for name, path, old, new, tests in chosen:
        verdict = run(name, path, old, new, tests)
        holes += verdict.startswith("NOT")
        print(f"{name:<26} {verdict}", flush=True)
    return 1 if holes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
