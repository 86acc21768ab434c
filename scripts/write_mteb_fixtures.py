"""Write the mteb 1.x result files of tests/fixtures/mteb/mteb-1.12/ with mteb 1.x's own code.

The files are what mteb 1.12 saved after a run: ``MTEBResults.to_disk`` (the class 1.11 to 1.12
called what later versions call ``TaskResult``) and ``ModelMeta.to_dict`` dumped to
``model_meta.json``, in mteb's ``<org__model>/<revision>/<Task>.json`` layout. The scores are
made-up inputs for tests, not any model's published numbers. Run it with mteb 1.12 on the path
ahead of the installed 2.x::

    pip install --no-deps --target /tmp/mteb1 mteb==1.12.94
    PYTHONPATH=/tmp/mteb1 .venv/bin/python scripts/write_mteb_fixtures.py
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mteb" / "mteb-1.12"
CIFAR10_REVISION = "69a62dd171e24a133d193073e73fda4dbb823266"
FLICKR_REVISION = "e819702b287bfbe084e129a61f308a802b7c108e"
STS17_REVISION = "2e31b4b459551a51e1ab54fd7266b40f3fe510d4"


def _subset(subset: str, languages: list[str], main: str, **metrics: float) -> dict[str, Any]:
    return {**metrics, "main_score": metrics[main], "hf_subset": subset, "languages": languages}


# (model, revision, task, dataset revision, scores): two revisions of one model, and a model
# saved without a revision (mteb's ``no_revision_available`` folder) and without model_meta.json.
RESULTS: list[tuple[str, str, str, str, dict[str, list[dict[str, Any]]]]] = [
    (
        "fixture-org/clip-like",
        "rev-a",
        "CIFAR10ZeroShot",
        CIFAR10_REVISION,
        {"test": [_subset("default", ["eng-Latn"], "accuracy", accuracy=0.8123)]},
    ),
    (
        "fixture-org/clip-like",
        "rev-a",
        "Flickr30kT2IRetrieval",
        FLICKR_REVISION,
        {
            "test": [
                _subset(
                    "default",
                    ["eng-Latn"],
                    "ndcg_at_10",
                    ndcg_at_1=0.412,
                    ndcg_at_5=0.5531,
                    ndcg_at_10=0.58642,
                    map_at_10=0.52013,
                    recall_at_10=0.7832,
                    precision_at_10=0.07832,
                    mrr_at_10=0.52013,
                )
            ]
        },
    ),
    (
        "fixture-org/clip-like",
        "rev-a",
        "STS17MultilingualVisualSTS",
        STS17_REVISION,
        {
            "test": [
                _subset(
                    "en-en",
                    ["eng-Latn"],
                    "cosine_spearman",
                    cosine_pearson=0.7012,
                    cosine_spearman=0.6931,
                ),
                _subset(
                    "ko-ko",
                    ["kor-Hang"],
                    "cosine_spearman",
                    cosine_pearson=0.3104,
                    cosine_spearman=0.2987,
                ),
            ]
        },
    ),
    (
        "fixture-org/clip-like",
        "rev-b",
        "CIFAR10ZeroShot",
        CIFAR10_REVISION,
        {"test": [_subset("default", ["eng-Latn"], "accuracy", accuracy=0.8401)]},
    ),
    (
        "fixture-org/no-meta",
        "no_revision_available",
        "CIFAR10ZeroShot",
        CIFAR10_REVISION,
        {"test": [_subset("default", ["eng-Latn"], "accuracy", accuracy=0.6555)]},
    ),
]
# Models whose folder gets mteb 1.12's model_meta.json: (n_parameters, embed_dim).
MODEL_META = {"fixture-org/clip-like": (151_277_313, 512)}


def main() -> None:
    """Write every file of :data:`RESULTS` with mteb 1.12's own classes."""
    installed = version("mteb")
    if not installed.startswith("1.12."):
        raise SystemExit(f"mteb {installed} is first on the path; put mteb 1.12 there (see above)")
    from mteb.load_results.mteb_results import MTEBResults
    from mteb.model_meta import ModelMeta

    for model, revision, task, dataset_revision, scores in RESULTS:
        folder = OUT / model.replace("/", "__") / revision
        folder.mkdir(parents=True, exist_ok=True)
        result = MTEBResults.model_validate(
            {
                "dataset_revision": dataset_revision,
                "task_name": task,
                "mteb_version": installed,
                "scores": scores,
                "evaluation_time": 12.5,
            }
        )
        result.to_disk(folder / f"{task}.json")
        if model in MODEL_META:
            n_parameters, embed_dim = MODEL_META[model]
            meta = ModelMeta(
                name=model,
                revision=revision,
                release_date=None,
                languages=None,
                n_parameters=n_parameters,
                embed_dim=embed_dim,
            )
            with (folder / "model_meta.json").open("w") as file:
                json.dump(meta.to_dict(), file)
    print(f"wrote {len(RESULTS)} result files with mteb {installed} under {OUT}")


if __name__ == "__main__":
    main()
