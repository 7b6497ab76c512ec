"""Learn tinyshakespeare online in one pass, printing bits per character as it goes, then write.

    python examples/shakespeare.py [path/to/text.txt] [--max-chars N]

Every character is predicted before it is learned; the progress bar shows the running bits per
character (the cost of coding the text with the model's predictions). At the end the model
continues the text from where the stream stopped.
"""

import argparse
import math
import pathlib

from tqdm import tqdm

import streamrnn
from connectors.text import iter_text

DEFAULT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "text" / "tinyshakespeare.txt"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", default=str(DEFAULT))
    ap.add_argument("--max-chars", type=int, default=None)
    args = ap.parse_args()
    text = pathlib.Path(args.path).read_text(encoding="utf-8")[: args.max_chars]

    # the configuration of benchmarks/bench_text.py: 2.12 bits per character in one pass
    model = streamrnn.RecurrentClassifier(cell="lstm", hidden_size=256, embedding_size=32, truncation=10,
                                          update_every=10, lr=5e-3, ngram_order=5, ngram_buckets=1 << 18,
                                          ngram_lr=0.7, seed=0)
    bits = 0.0
    with tqdm(total=len(text), unit="ch", unit_scale=True) as bar:
        for n, (x, y) in enumerate(iter_text(text), 1):
            nats = model.learn_one_loss(x, y)
            # a character never seen before costs an escape plus its UTF-8 bytes
            bits += (13.3 + 8 * len(y.encode())) if math.isinf(nats) else nats / math.log(2)
            if n % 2000 == 0:
                bar.update(2000)
                bar.set_postfix_str(f"{bits / n:.3f} bits/char")
    print(f"\n{bits / len(text):.3f} bits per character over {len(text):,} characters, one pass\n")
    print("".join(model.generate(600, temperature=0.7, seed=42)))


if __name__ == "__main__":
    main()
