"""Where retrieval cost goes as the corpus grows: exact top-k over precomputed vectors.

No model: a seeded random corpus of 10^4, 10^5 and 10^6 float32 vectors (d = 512, as CLIP
ViT-B/32) and 1,000 queries, top 1,000 per query (mteb's largest k). Each size runs in a fresh
process that reports the search time, the corpus memory, and the peak resident memory above
the corpus (the scoring workspace), for ``harness.scoring.search.top_k_search`` and, at the
sizes that fit in a few minutes, for mteb's own chunked search
(``mteb.models.search_wrappers.chunked_full_corpus_search``, chunk 50,000 as its
``SearchEncoderWrapper``), fed the same vectors.

    python -m benchmarks.retrieval_scaling            # 10^4, 10^5, 10^6; mteb up to 10^5
    python -m benchmarks.retrieval_scaling --sizes 10000 --mteb-max 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIM = 512
QUERIES = 1000
TOP_K = 1000
MTEB_CHUNK = 50_000
SEED = 0


def rss_mib() -> float:
    """Current resident memory of this process, in MiB."""
    with open("/proc/self/statm") as stream:
        pages = int(stream.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vectors(n: int, seed: int) -> Any:
    """A seeded (n, DIM) float32 matrix, made in blocks so no float64 copy ever exists."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 65536):
        block = out[start : start + 65536]
        block[...] = rng.standard_normal(block.shape, dtype=np.float32)
    return out


def measure(side: str, n: int) -> dict[str, float]:
    """Run one search in this process; return seconds and memory (MiB)."""
    import numpy as np
    import torch

    torch.set_grad_enabled(False)
    queries = vectors(QUERIES, SEED + 1)
    before_corpus = rss_mib()
    corpus = vectors(n, SEED)
    with_corpus = rss_mib()
    search = _harness_search if side == "harness" else _mteb_search
    search(queries[:10], corpus[:20000])  # warm up: imports and first-call costs
    base = max(rss_mib(), with_corpus)
    start = time.perf_counter()
    top = search(queries, corpus)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "corpus_mib": with_corpus - before_corpus,
        "workspace_mib": max(0.0, peak_rss_mib() - base),
        "peak_rss_mib": peak_rss_mib(),
        "top1_checksum": float(np.asarray(top).sum()),
    }


def _harness_search(queries: Any, corpus: Any) -> Any:
    from harness.scoring.search import top_k_search

    _, indices = top_k_search(queries, corpus, TOP_K, similarity="cosine")
    return indices[:, 0]


def _mteb_search(queries: Any, corpus: Any) -> Any:
    """mteb's chunked search with an encoder that hands back the precomputed vectors."""
    import datasets
    import torch
    from mteb.models.search_wrappers import chunked_full_corpus_search
    from mteb.similarity_functions import cos_sim

    from benchmarks.mteb_tasks import _metadata

    ids = [str(i) for i in range(len(corpus))]
    task_corpus = datasets.Dataset.from_dict({"id": ids, "text": ids})

    def encode(loader: Any, **kwargs: Any) -> Any:
        first, last = int(loader.dataset["id"][0]), int(loader.dataset["id"][-1])
        return torch.from_numpy(corpus[first : last + 1])

    metadata = _metadata("Scaling", "Retrieval", "ndcg_at_10", "t2t", ["text"])
    heaps = chunked_full_corpus_search(
        task_corpus=task_corpus,
        corpus_chunk_size=MTEB_CHUNK,
        query_idx_to_id={i: str(i) for i in range(len(queries))},
        query_embeddings=torch.from_numpy(queries),
        task_metadata=metadata,
        hf_subset="default",
        hf_split="test",
        top_k=TOP_K,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
        encode_fn=encode,
        similarity_fn=cos_sim,
        search_k_offset=1,
    )
    return [int(max(heap)[1]) for _, heap in sorted(heaps.items(), key=lambda kv: int(kv[0]))]


def run_child(side: str, n: int) -> dict[str, float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-m", "benchmarks.retrieval_scaling", "--child", side, str(n)]
    output = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise SystemExit(f"{side} at {n}: {output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--mteb-max", type=int, default=100_000, help="largest size for mteb")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return 0
    print(f"d={DIM}, {QUERIES} queries, top {TOP_K}, cosine; load {os.getloadavg()[0]:.2f}")
    header = ("corpus", "side", "search s", "corpus MiB", "workspace MiB", "peak RSS MiB")
    rows = []
    for n in map(int, args.sizes.split(",")):
        for side in ("harness", "mteb"):
            if side == "mteb" and n > args.mteb_max:
                rows.append((f"{n:,}", side, "not run (too slow)", "", "", ""))
                continue
            m = run_child(side, n)
            rows.append(
                (
                    f"{n:,}",
                    side,
                    f"{m['seconds']:.2f}",
                    f"{m['corpus_mib']:.0f}",
                    f"{m['workspace_mib']:.0f}",
                    f"{m['peak_rss_mib']:.0f}",
                )
            )
            print("  " + "  ".join(rows[-1]), flush=True)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    for n, row in enumerate([header, *rows]):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
