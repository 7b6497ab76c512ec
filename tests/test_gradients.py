"""Analytic gradients through a truncated window against central finite differences."""

import numpy as np
import pytest

import streamrnn
from streamrnn.cells import CELLS
from streamrnn import layout
from streamrnn.kernels import blocks
from streamrnn.kernels import engine as E


def window_loss(mem, meta, scratch):
    """Re-run the forward over the stored window from the stored state before it, with the
    parameters in ``mem``, and sum the losses of the steps the update learns from."""
    mem = mem.copy()
    L, H, B = int(meta[blocks.LAYERS]), int(meta[blocks.HIDDEN]), int(meta[blocks.ROWS])
    G = int(meta[blocks.GATES]) * H
    e, S = int(meta[blocks.EMBED]), int(meta[blocks.SLOTS])
    xs = layout.block(mem, meta, blocks.XS)
    tok = layout.block(mem, meta, blocks.TOK)
    ys = layout.block(mem, meta, blocks.YS)
    hs = layout.block(mem, meta, blocks.HS)
    cs = layout.block(mem, meta, blocks.CS)
    act = layout.block(mem, meta, blocks.ACT)
    aux = layout.block(mem, meta, blocks.AUX)
    pos = int(meta[blocks.POS])
    W = min(int(meta[blocks.TRUNCATION]), int(meta[blocks.N_STEPS]))
    n_loss = min(int(meta[blocks.UPDATE_EVERY]), W)
    for r in range(pos - W, pos):
        E.embed_input(mem, meta, tok[r], xs[r, :e])  # the embedding rows may be perturbed
        E.forward_stack(mem, meta, xs[r], hs, cs, r - 1, r, act, aux, r)
    return sum(E.step_loss(mem, meta, scratch, r, ys[r]) for r in range(pos - n_loss, pos))


def _event(rng, classify):
    x = {"a": rng.normal(), "b": rng.uniform(-2, 2), "c": rng.choice(["u", "v", "w"])}
    return x, (f"k{rng.integers(3)}" if classify else float(rng.normal() * 3 + 1))


def trained_window(model, n_events, rng, n_learning=40):
    """Let the model learn ``n_learning`` events first (the output weights start at zero, and the
    gradient of every weight behind them is zero until they move), then stream ``n_events`` events
    with a learning rate of 0, so that the stored activations were computed with the current
    parameters, as the gradient assumes."""
    classify = isinstance(model, streamrnn.RecurrentClassifier)
    for t in range(n_learning + n_events):
        if t == n_learning:
            layout.block(model._mem, model._meta, blocks.HYPER)[blocks.LR] = 0.0
        model.learn_one(*_event(rng, classify))
    return model


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("head", ["squared", "huber", "softmax"])
@pytest.mark.parametrize("truncation,update_every,num_layers,embedding_size", [
    (5, 1, 1, None), (6, 3, 2, None), (4, 4, 1, None), (5, 2, 1, 3), (4, 1, 2, 2)])
def test_gradient_matches_finite_differences(cell, head, truncation, update_every, num_layers, embedding_size):
    rng = np.random.default_rng(0)
    params = dict(cell=cell, hidden_size=5, num_layers=num_layers, truncation=truncation,
                  update_every=update_every, embedding_size=embedding_size, seed=3,
                  dtype="float64")  # finite differences need double precision
    if head == "softmax":
        model = streamrnn.RecurrentClassifier(**params)
    else:
        model = streamrnn.RecurrentRegressor(loss=head, huber_delta=0.3, **params)
    _check_gradient(model, truncation, rng)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("update_every", [1, 3])
def test_gradient_with_ngram_connections(cell, update_every):
    """The n-gram rows add constants to the logits: the network's gradient must account for them."""
    rng = np.random.default_rng(1)
    model = streamrnn.RecurrentClassifier(cell=cell, hidden_size=5, truncation=5, update_every=update_every,
                                          embedding_size=3, ngram_order=3, ngram_buckets=16, seed=3,
                                          dtype="float64")
    _check_gradient(model, 5, rng)
    table = layout.block(model._mem, model._meta, blocks.NGW)
    assert np.abs(table).max() > 1e-3  # the rows learned while the window filled


def _check_gradient(model, truncation, rng):
    # more events than the buffer holds, so the window has slid
    model = trained_window(model, 3 * truncation + 5, rng)
    mem, meta, scratch = model._mem, model._meta, model._scratch
    P = int(meta[blocks.N_PARAMS])

    E.compute_gradient(mem, meta, scratch)
    analytic = np.zeros(P)
    D = int(meta[blocks.N_DENSE])
    analytic[:D] = scratch[:D]
    e, S, K = int(meta[blocks.EMBED]), int(meta[blocks.SLOTS]), int(meta[blocks.TRUNCATION])
    if e:
        # the embedding gradient is sparse: one row per token used in the window
        rows = layout.block(scratch, meta, blocks.GEROWS)
        touched = layout.block(scratch, meta, blocks.TOUCHED)
        emb = layout.offset(meta, blocks.EMB)
        for r in range(int(meta[blocks.N_TOUCHED])):
            tk = int(touched[r])
            analytic[emb + tk * e : emb + (tk + 1) * e] = rows[r]
        assert int(meta[blocks.N_TOUCHED]) > 0

    numeric = np.zeros(P)
    eps = 1e-6
    for k in range(P):
        orig = mem[k]
        mem[k] = orig + eps
        up = window_loss(mem, meta, scratch)
        mem[k] = orig - eps
        down = window_loss(mem, meta, scratch)
        mem[k] = orig
        numeric[k] = (up - down) / (2 * eps)

    assert np.linalg.norm(analytic) > 1e-3
    # every layer's input and recurrent weights get a gradient (not only the head), so that a wrong
    # backward pass through a cell cannot pass
    H, G, L = int(meta[blocks.HIDDEN]), int(meta[blocks.GATES]) * int(meta[blocks.HIDDEN]), int(meta[blocks.LAYERS])
    for layer in range(L):
        for kind, size in ((blocks.WH, H * G), (blocks.BX, G)):
            start = layout.offset(meta, kind, layer)
            assert np.linalg.norm(numeric[start:start + size]) > 1e-4, (kind, layer)
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    assert rel < 1e-6, rel


def test_block_views_are_the_blocks_and_refuse_to_reach_past_the_array():
    """The kernels' views (an intrinsic, not reshape) are C-contiguous windows onto the array,
    shared with it; they check nothing, so a table with a block beyond the end is refused where
    it is laid out, before any kernel reads foreign memory by it."""
    from numba import njit

    from streamrnn.kernels.views import view

    @njit
    def two(a, start, rows, cols):
        return view(a, start, (rows, cols))

    @njit
    def three(a, start):
        return view(a, start, (2, 3, 4))

    for dtype in (np.float32, np.float64):
        a = np.arange(100, dtype=dtype)
        v = two(a, 7, 3, 5)
        assert v.flags.c_contiguous and np.array_equal(v, a[7:22].reshape(3, 5))
        v[1, 2] = -1.0
        assert a[7 + 5 + 2] == -1.0
        assert np.array_equal(three(a, 50), a[50:74].reshape(2, 3, 4))

    model = streamrnn.RecurrentRegressor(hidden_size=4, seed=0)
    model.learn_one({"x": 1.0}, 2.0)
    meta = model._meta.copy()
    meta[layout._entry(blocks.WY, 0)] = model._mem.size - 1  # the head's weights past the end
    with pytest.raises(IndexError, match="beyond its array"):
        layout.check_table(model._cfg, meta, model._mem.size, model._scratch.size)


def test_every_view_a_kernel_takes_has_the_shape_its_block_declares():
    """The kernels take blocks by kind and get the shape ``layout`` declared (kernels/blocks.py):
    a block taken with another number of dimensions than its kind has raises, so a schema change
    that the kernels do not follow cannot read the neighbouring block; and a table whose blocks do
    not fit their arrays, or disagree with their kind, is refused where it is laid out."""
    from streamrnn.kernels import blocks as K

    for cell in CELLS:
        model = streamrnn.RecurrentForecaster(cell=cell, hidden_size=4, num_layers=2, seed=0)
        for t in range(30):
            model.learn_one(float(t % 5), {"a": float(t)})
        model.forecast(3)
        meta, mem, scratch = model._meta, model._mem, model._scratch
        cfg = model._cfg
        for kind, layer, shape in cfg.param_blocks() + cfg.state_blocks() + cfg.scratch_blocks():
            assert layout.shape(meta, kind, layer) == tuple(shape), (kind, layer)
            arr = scratch if (kind, layer, shape) in cfg.scratch_blocks() else mem
            taken = {1: K.vec, 2: K.mat, 3: K.cube}[len(shape)](arr, meta, kind, layer)
            assert taken.shape == tuple(shape)
            assert np.shares_memory(taken, arr) or taken.size == 0
            other = {1: K.mat, 2: K.cube, 3: K.vec}[len(shape)]
            with pytest.raises(IndexError, match="dimensions"):
                other(arr, meta, kind, layer)
    sizes = (mem.size, scratch.size)
    layout.check_table(cfg, meta, *sizes)
    wrong = meta.copy()
    wrong[layout._entry(blocks.ACT, 0) + 1] = 2  # the window's activations declared a matrix
    with pytest.raises(IndexError, match="dimensions"):
        layout.check_table(cfg, wrong, *sizes)
    for kind, layer in ((blocks.WH, 1), (blocks.ZCAT, 0), (blocks.AUX, 0), (blocks.EMB, 0)):
        wrong = meta.copy()
        wrong[layout._entry(kind, layer)] += 16 + mem.size  # the block moved past its array's end
        with pytest.raises(IndexError, match="beyond"):
            layout.check_table(cfg, wrong, *sizes)
    wrong = meta.copy()
    wrong[layout._entry(blocks.DAX, 0) + 3] += 1  # a dimension larger than the array leaves room for
    with pytest.raises(IndexError, match="beyond"):
        layout.check_table(cfg, wrong, *sizes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_product_matches_numpy(dtype):
    """linalg.mat_tn (the weight gradient over a window) is a.T @ b for every window length: the
    blocks of eight, four and one step, and windows shorter than a block."""
    from streamrnn.kernels.linalg import mat_tn

    rng = np.random.default_rng(0)
    for W in range(0, 21):
        for n, m in ((0, 4), (1, 8), (5, 12), (33, 128)):
            a = rng.normal(size=(W, n)).astype(dtype)
            b = rng.normal(size=(W, m)).astype(dtype)
            out = np.full((n, m), np.nan, dtype=dtype)  # every entry must be written
            mat_tn(a, b, out)
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(out, a.T.astype(np.float64) @ b, rtol=tol, atol=tol * max(W, 1))


def test_disjoint_kernels_tell_llvm_that_their_arrays_do_not_overlap():
    """The ``disjoint`` decorator marks each pointer argument ``noalias`` (numba's
    ``Flags.noalias``). Without it the per-step loops of the backward passes stay scalar (an
    LSTM-32 event took 1.2x as long), and nothing else would notice if numba stopped honouring the
    flag: so look at the LLVM signature."""
    from numba import njit

    from streamrnn.kernels import _jit

    def axpy(x, y):
        for i in range(x.shape[0]):
            y[i] += 2.0 * x[i]

    def signature(**options):
        f = njit(**options)(axpy)
        x = np.arange(5.0)
        y = np.ones(5)
        f(x, y)
        np.testing.assert_array_equal(y, 1.0 + 2.0 * np.arange(5.0))
        ir = f.inspect_llvm(f.signatures[0])
        return next(line for line in ir.splitlines() if line.startswith("define") and "axpy" in line)

    plain = signature()
    marked = signature(pipeline_class=_jit._DisjointCompiler)
    # two array data pointers more (x's and y's); numba marks its own return pointers in both
    assert marked.count("noalias") >= plain.count("noalias") + 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_and_scratch_blocks_start_on_cache_lines(dtype):
    """The state arrays start on a 64-byte boundary and every state and scratch block on a multiple
    of 16 elements, also after the model grew and after a pickle round trip (the vector loads of
    a misaligned window straddle cache lines: 8 to 13% of an LSTM-32 event)."""
    import pickle

    def check(model):
        for arr in (model._mem, model._scratch):
            assert arr.ctypes.data % 64 == 0
        cfg, meta = model._cfg, model._meta
        for kind, layer, _ in cfg.state_blocks() + cfg.scratch_blocks():
            assert layout.offset(meta, kind, layer) % 16 == 0, kind

    model = streamrnn.RecurrentRegressor(hidden_size=5, truncation=3, seed=0, dtype=dtype)
    for t in range(6):
        model.learn_one({"a": float(t)}, float(t))
    check(model)
    model.learn_one({"a": 1.0, "b": 2.0, "c": "red"}, 1.0)  # the input layer grows
    check(model)
    check(pickle.loads(pickle.dumps(model)))


def test_kernel_cache_is_dropped_when_any_kernel_source_changes(tmp_path):
    """numba checks a cached function against its own file only, but the engine's machine code
    inlines the cells' kernels: the package stamps the cache directory with a digest of all kernel
    sources and drops numba's files when it differs."""
    from pathlib import Path

    from numba.core.caching import FunctionCache

    from streamrnn.kernels import _cache, linalg

    src = tmp_path / "src"
    src.mkdir()
    (src / "engine.py").write_text("A = 1\n")
    (src / "lstm.py").write_text("B = 2\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("engine.learn_event-1.py311.nbi", "engine.learn_event-1.py311.1.nbc", "engine.cpython-311.pyc"):
        (cache / name).write_text("x")

    digest = _cache.sources_digest(src)
    assert _cache.drop_stale(cache, digest)  # no stamp yet: dropped
    assert sorted(p.name for p in cache.iterdir()) == ["engine.cpython-311.pyc", _cache.STAMP]
    (cache / "engine.learn_event-1.py311.nbi").write_text("x")  # numba writes a new cache
    assert not _cache.drop_stale(cache, digest)  # same sources: kept
    assert (cache / "engine.learn_event-1.py311.nbi").exists()

    (src / "lstm.py").write_text("B = 3\n")  # an edit in another module than the cached function's
    changed = _cache.sources_digest(src)
    assert changed != digest
    assert _cache.drop_stale(cache, changed)
    assert not (cache / "engine.learn_event-1.py311.nbi").exists()

    # the package did this at import, for its own cache directory
    kernels_dir = Path(linalg.__file__).parent
    stamp = Path(FunctionCache(linalg.exp.py_func)._cache_path) / _cache.STAMP
    assert stamp.read_text() == _cache.sources_digest(kernels_dir)
