"""Visual STS end to end: hub layout with language-pair configs, mteb agreement, CLI, demo."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import datasets
import mteb
import numpy as np
import pytest
import yaml

from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.tasks.definition import TaskDefinition
from harness.tasks.demo.shapes import Scene
from harness.tasks.demo.visual_sts import (
    TASK_NAME,
    build_visual_sts,
    caption_pairs,
    shared_attributes,
)
from harness.tasks.registry import builtin_tasks
from harness.tasks.visual_sts import VisualSTS
from tests.dataset_fixtures import (
    COLOURS,
    DEMO_DATA,
    RGB,
    png_bytes,
    read_result_json,
    run_cli,
    write_hub_dataset,
)
from tests.test_multiple_choice import ContentAdapter, MtebContentModel, assert_same_rows

STS_FEATURES = datasets.Features(
    {
        "sentence1": datasets.Image(),
        "sentence2": datasets.Image(),
        "score": datasets.Value("float64"),
    }
)
SUBSETS = {"en-en": ["eng-Latn"], "en-de": ["eng-Latn", "deu-Latn"]}
METRICS = (
    "pearson",
    "spearman",
    "cosine_pearson",
    "cosine_spearman",
    "manhattan_pearson",
    "manhattan_spearman",
    "euclidean_pearson",
    "euclidean_spearman",
)


def image(colour: str, seed: int) -> dict[str, Any]:
    return {"bytes": png_bytes(RGB[colour], size=8, seed=seed), "path": None}


def sts_rows(seed: int, n: int = 30) -> list[dict[str, Any]]:
    """Pairs of small images; images repeat within and across the two columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a, b = (str(c) for c in rng.choice(COLOURS, 2))
        rows.append(
            {
                "sentence1": image(a, int(rng.integers(4))),
                "sentence2": image(b, int(rng.integers(4))),
                "score": float(rng.integers(0, 26)) / 5,
            }
        )
    return rows


def rendered_sts(root: Path) -> Path:
    """Pixel-Linguist/rendered-sts17's layout: a config per language pair, split test."""
    parts = {name: (sts_rows(i), STS_FEATURES) for i, name in enumerate(SUBSETS)}
    return write_hub_dataset(root, parts)


def definition(data: Path, category: str = "i2i", **protocol: Any) -> TaskDefinition:
    return TaskDefinition(
        name="TestVisualSTS",
        type="visual_sts",
        category=category,  # type: ignore[arg-type]
        dataset={"path": str(data)},
        protocol={"subsets": SUBSETS, **protocol},
    )


def evaluate(task: TaskDefinition, adapter: Any = None, **kwargs: Any) -> Any:
    encoder = BatchEncoder(adapter or ContentAdapter(), show_progress=False, **kwargs)
    return VisualSTS().evaluate(task, encoder, split="test")


def test_matches_mteb_on_every_language_pair(tmp_path: Path) -> None:
    data = rendered_sts(tmp_path / "rendered-sts17")
    reference_task = mteb.get_task("STS17MultilingualVisualSTS")
    reference_task.dataset = {name: datasets.load_dataset(str(data), name) for name in SUBSETS}
    reference_task.data_loaded = True
    reference = reference_task.evaluate(
        MtebContentModel(), "test", subsets_to_run=list(SUBSETS), encode_kwargs={"batch_size": 8}
    )

    outcome = evaluate(definition(data))
    assert [entry["hf_subset"] for entry in outcome.subsets] == list(SUBSETS)
    for entry in outcome.subsets:
        expected = dict(reference[entry["hf_subset"]])
        assert entry["languages"] == SUBSETS[entry["hf_subset"]]
        assert entry["main_score"] == entry["cosine_spearman"] == expected.pop("main_score")
        assert {key: entry[key] for key in METRICS} == expected
        assert list(expected) == list(METRICS)


def test_both_columns_in_one_call_each_distinct_image_once(tmp_path: Path) -> None:
    data = rendered_sts(tmp_path / "dedup")
    adapter = ContentAdapter()
    encoder = BatchEncoder(adapter, show_progress=False)
    VisualSTS().evaluate(definition(data), encoder, split="test")
    distinct = sum(
        len({row[c]["bytes"] for row in sts_rows(i) for c in ("sentence1", "sentence2")})
        for i in range(len(SUBSETS))
    )
    assert adapter.encoded == encoder.stats.items_encoded == distinct < 2 * 30 * len(SUBSETS)


def test_limit_and_a_single_default_config(tmp_path: Path) -> None:
    data = write_hub_dataset(tmp_path / "single", {"default": (sts_rows(9), STS_FEATURES)})
    task = TaskDefinition(
        name="OneConfig", type="visual_sts", category="i2i", dataset={"path": str(data)}
    )
    adapter = ContentAdapter()
    encoder = BatchEncoder(adapter, show_progress=False)
    outcome = VisualSTS().evaluate(task, encoder, split="test", limit=5)
    [entry] = outcome.subsets
    assert entry["hf_subset"] == "default" and entry["languages"] == ["eng-Latn"]
    assert adapter.encoded <= 10


def test_undecodable_image_is_skipped_with_its_pair(tmp_path: Path) -> None:
    rows = sts_rows(3, n=8)
    rows[2]["sentence2"] = {"bytes": b"\x89PNG broken", "path": None}
    data = write_hub_dataset(tmp_path / "broken", {"default": (rows, STS_FEATURES)})
    task = TaskDefinition(
        name="Broken", type="visual_sts", category="i2i", dataset={"path": str(data)}
    )
    with pytest.raises(HarnessError, match=r"default/2/sentence2.*--skip-bad-inputs"):
        evaluate(task)
    outcome = evaluate(task, skip_bad_inputs=True)
    assert outcome.skipped_inputs == ["default/2/sentence2"]
    assert math.isfinite(outcome.subsets[0]["cosine_spearman"])


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    data = rendered_sts(tmp_path / "errors")
    with pytest.raises(HarnessError, match=r"TestVisualSTS.*'en-en'.*lacks.*gold"):
        evaluate(_with_columns(data, score="gold"))
    with pytest.raises(HarnessError, match="category must be i2i, t2t"):
        evaluate(definition(data, "it2i"))
    with pytest.raises(HarnessError, match="cannot load config 'en-fr'"):
        evaluate(definition(data, subsets={"en-fr": ["fra-Latn"]}))
    maxsim = ContentAdapter()
    maxsim.meta = dataclasses.replace(maxsim.meta, similarity="maxsim")
    with pytest.raises(HarnessError, match="maxsim"):
        evaluate(definition(data), maxsim)
    rows = sts_rows(4, n=4)
    rows[1]["score"] = None
    missing = write_hub_dataset(tmp_path / "no-score", {"default": (rows, STS_FEATURES)})
    task = TaskDefinition(
        name="NoScore", type="visual_sts", category="i2i", dataset={"path": str(missing)}
    )
    with pytest.raises(HarnessError, match=r"NoScore.*no numeric score .*row 1"):
        evaluate(task)


def _with_columns(data: Path, **columns: str) -> TaskDefinition:
    return TaskDefinition(
        name="TestVisualSTS",
        type="visual_sts",
        category="i2i",
        dataset={"path": str(data), "columns": columns},
        protocol={"subsets": SUBSETS},
    )


def test_end_to_end_through_the_cli_with_custom_yaml(tiny_clip_dir: Path, tmp_path: Path) -> None:
    data = rendered_sts(tmp_path / "cli")
    entry = {
        "name": "MyVisualSTS",
        "type": "visual_sts",
        "category": "i2i",
        "dataset": {"path": str(data)},
        "languages": ["eng-Latn", "deu-Latn"],
        "protocol": {"subsets": SUBSETS},
    }
    task_file = tmp_path / "sts.yaml"
    task_file.write_text(yaml.safe_dump(entry, sort_keys=False))
    assert run_cli(tiny_clip_dir, task_file, tmp_path) == 0
    entries = read_result_json(tmp_path, "MyVisualSTS")["scores"]["test"]
    assert [e["hf_subset"] for e in entries] == list(SUBSETS)
    for result in entries:
        assert result["main_score"] == result["cosine_spearman"]
        assert all(math.isfinite(result[key]) and -1 <= result[key] <= 1 for key in METRICS)


def test_demo_task_is_registered_and_rebuilds_identically(tmp_path: Path) -> None:
    assert builtin_tasks()[TASK_NAME].type == "visual_sts"
    build_visual_sts(tmp_path)
    committed, rebuilt = DEMO_DATA / TASK_NAME, tmp_path / TASK_NAME
    assert (committed / "README.md").read_text() == (rebuilt / "README.md").read_text()
    part = Path("default") / "test-00000-of-00001.parquet"
    assert_same_rows(committed / part, rebuilt / part)


def test_demo_gold_scores_count_shared_attributes() -> None:
    pairs = caption_pairs()
    assert {score for _, _, score in pairs} == {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    paraphrases = [(a, b) for a, b, score in pairs if score == 5.0]
    assert paraphrases and all(a != b for a, b in paraphrases)
    same = Scene(("circle", "square"), ("red", "blue"), "left of")
    assert shared_attributes(same, Scene(("square", "circle"), ("blue", "red"), "right of")) == 5
    assert shared_attributes(same, Scene(("square", "circle"), ("blue", "red"), "left of")) == 1
