"""Online bits per character of streamrnn against gzip, bzip2 and xz, on the same bytes, one pass.

Every symbol is predicted before it is learned, from the first one on: the cost of a symbol is
-log2 p(symbol) under the model's prediction, read from the forward pass that learns it
(``learn_one_loss``). A symbol never seen before has probability 0 under the model, so it is coded
with an escape: -log2(1e-4) bits plus 8 bits per UTF-8 byte (the model's other predictions lose
log2(1/(1 - 1e-4)) bits for reserving that mass, which is counted too).

The compressors run in the same process with Python's standard library (gzip -9, bz2 level 9,
lzma preset 9|EXTREME) on the file's bytes. Bits per character = 8 * compressed bytes /
characters. A plot of cumulative bpc against position is written next to the table.

    python benchmarks/bench_text.py                                   # tinyshakespeare
    python benchmarks/bench_text.py ../shared/datasets/text/pride_and_prejudice_pg1342.txt
    python benchmarks/bench_text.py FILE --hidden-size 128 --max-chars 200000
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import lzma
import math
import os
import pathlib
import time

import streamrnn
from connectors.text import iter_text

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "datasets" / "text" / "tinyshakespeare.txt"
ESCAPE = 1e-4


def compressor_bpc(data: bytes, n_chars: int) -> dict:
    out = {}
    for name, fn in (("gzip -9", lambda b: gzip.compress(b, 9)),
                     ("bzip2 -9", lambda b: bz2.compress(b, 9)),
                     ("xz -9e", lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME))):
        t = time.perf_counter()
        size = len(fn(data))
        out[name] = (8 * size / n_chars, n_chars / (time.perf_counter() - t))
    return out


def model_bpc(text: str, model, report_every: int):
    keep = -math.log2(1 - ESCAPE)
    bits = 0.0
    curve = []
    n = 0
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=len(text), unit="ch", unit_scale=True, mininterval=1.0) as bar:
        for x, y in iter_text(text):
            nats = model.learn_one_loss(x, y)
            if math.isinf(nats):
                bits += -math.log2(ESCAPE) + 8 * len(y.encode())
            else:
                bits += nats / math.log(2) + keep
            n += 1
            if n % report_every == 0:
                curve.append((n, bits / n))
                bar.update(report_every)
                bar.set_postfix_str(f"bpc {bits / n:.3f}")
    elapsed = time.perf_counter() - start
    curve.append((n, bits / n))
    return bits / n, n / elapsed, curve


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT))
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--num-layers", type=int, default=1)
    ap.add_argument("--embedding-size", type=int, default=32)
    ap.add_argument("--truncation", type=int, default=10)
    ap.add_argument("--update-every", type=int, default=10)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--clip-norm", type=float, default=1.0)
    ap.add_argument("--ngram-order", type=int, default=5, help="direct n-gram connections (0: off)")
    ap.add_argument("--ngram-buckets", type=int, default=1 << 18)
    ap.add_argument("--ngram-lr", type=float, default=0.7)
    ap.add_argument("--max-chars", type=int, default=None)
    ap.add_argument("--plot", default=None, help="PNG path (default: next to the benchmark, bench_text_<file>.png)")
    args = ap.parse_args(argv)

    text = pathlib.Path(args.file).read_text(encoding="utf-8")
    if args.max_chars:
        text = text[: args.max_chars]
    data = text.encode("utf-8")
    config = dict(cell=args.cell, hidden_size=args.hidden_size, num_layers=args.num_layers,
                  embedding_size=args.embedding_size, truncation=args.truncation,
                  update_every=args.update_every, lr=args.lr, clip_norm=args.clip_norm,
                  ngram_order=args.ngram_order, ngram_buckets=args.ngram_buckets, ngram_lr=args.ngram_lr, seed=0)
    print(f"{args.file}: {len(data):,} bytes, {len(text):,} characters, {len(set(text))} distinct")
    print(f"streamrnn RecurrentClassifier({', '.join(f'{k}={v!r}' for k, v in config.items())})")
    model = streamrnn.RecurrentClassifier(**config)
    bpc, cps, curve = model_bpc(text, model, report_every=max(1000, len(text) // 200))
    rows = [("streamrnn " + f"{args.cell.upper()}-{args.hidden_size}", bpc, cps)]
    rows += [(name, b, speed) for name, (b, speed) in compressor_bpc(data, len(text)).items()]
    print(f"\n{'coder':<22} {'bits/char':>9} {'chars/s':>12}")
    for name, b, speed in rows:
        print(f"{name:<22} {b:9.3f} {speed:12,.0f}")
    best = min(b for name, b, _ in rows[1:])
    print(f"streamrnn / best classic compressor: {bpc / best:.3f}")
    print("sample (temperature 0.7):", repr("".join(model.generate(300, temperature=0.7, seed=1))))

    plot = args.plot or str(HERE / f"bench_text_{pathlib.Path(args.file).stem}.png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([c[0] for c in curve], [c[1] for c in curve], label=rows[0][0] + " (cumulative)")
    for name, b, _ in rows[1:]:
        ax.axhline(b, linestyle="--", linewidth=1, label=name, color={"gzip -9": "C1", "bzip2 -9": "C2"}.get(name, "C3"))
    ax.set_xlabel("characters")
    ax.set_ylabel("bits per character")
    ax.set_ylim(1.5, 5)
    ax.set_title(f"One pass over {os.path.basename(args.file)}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=100)
    print(f"plot: {plot}")


if __name__ == "__main__":
    main()
