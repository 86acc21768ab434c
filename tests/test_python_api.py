"""`harness.evaluate`: whole results from Python, files only when asked, any adapter object,
and nothing taken from the current folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness
from harness.app.runner import RunSettings, run
from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.errors import HarnessError
from harness.tasks.registry import load_task_file
from tests.dataset_fixtures import RGB, colour_retrieval, retrieval_task_yaml

TASK = "ColourT2IRetrieval"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("python-api")
    return retrieval_task_yaml(root / f"{TASK}.yaml", TASK, colour_retrieval(root / TASK))


class ColourMeans:
    """A model of our own: a text is its colour word's RGB, an image its mean pixel (centred)."""

    meta = AdapterMeta(
        name="colour-means",
        revision="v1",
        family="test",
        similarity="cosine",
        modalities=("image", "text"),
        dtype="float32",
        embed_dim=3,
    )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        rows = []
        for item in items:
            if item.get("text") is not None:
                colour = np.array(RGB[next(w for w in item["text"].split() if w in RGB)])
            else:
                colour = np.asarray(item["image"].convert("RGB"), float).reshape(-1, 3).mean(0)
            rows.append(colour - 127.5)
        return np.asarray(rows, dtype=np.float32)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_evaluate_returns_the_whole_result_and_writes_nothing(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, cache = tmp_path / "cwd", Path(os.environ["HARNESS_CACHE"])
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cached = listing(cache)
    (result,) = harness.evaluate(tiny_clip_dir, task_file, num_workers=0, batch_size=4)
    assert listing(cwd) == [] and listing(cache) == cached

    assert result.task_name == TASK
    (subset,) = result.scores["test"]
    assert {"ndcg_at_10", "map_at_10", "recall_at_1", "mrr_at_10"} <= set(subset)
    interval = result.harness.intervals["test"]["default"]
    assert interval["low"] <= subset["main_score"] <= interval["high"]
    units = result.unit_scores("test", "default")
    assert units is not None and len(units) == 8  # one per query
    assert result.harness.model.name == tiny_clip_dir.name

    # The same numbers as `harness run` writes.
    settings = RunSettings(
        output=tmp_path / "out", cache_dir=None, num_workers=0, show_progress=False
    )
    (outcome,) = run(str(tiny_clip_dir), [str(task_file)], settings).outcomes
    assert outcome.path is not None
    written = json.loads(outcome.path.read_text())
    assert written["scores"] == result.model_dump(mode="json")["scores"]
    assert written["harness"]["intervals"] == result.harness.intervals


def test_with_output_it_writes_the_run_layout_and_reuses_a_finished_task(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path
) -> None:
    first = harness.evaluate(str(tiny_clip_dir), [task_file], output=tmp_path, num_workers=0)
    files = list(tmp_path.glob(f"{tiny_clip_dir.name}/*/{TASK}.json"))
    assert len(files) == 1 and (files[0].parent / "model_meta.json").is_file()
    again = harness.evaluate(str(tiny_clip_dir), [task_file], output=tmp_path, num_workers=0)
    assert again[0].date == first[0].date  # read back, not recomputed
    # As stored: an undefined metric (NaN in a fresh result) reads back as None.
    assert again[0].model_dump(mode="json") == first[0].model_dump(mode="json")


def test_any_object_with_encode_and_meta_on_task_definitions(task_file: Path) -> None:
    (definition,) = load_task_file(task_file)
    (result,) = harness.evaluate(ColourMeans(), [definition], num_workers=0)
    # Each colour's swatch is the one document nearest its name: every query ranks it first.
    assert result.main_scores() == {"test": 1.0}
    assert result.harness.model.family == "test"


@pytest.mark.parametrize(
    ("model", "tasks", "settings", "error", "message"),
    [
        ("demo-clip", TASK, {"batchsize": 4}, TypeError, "unknown setting.*batchsize"),
        ("demo-clip", "NoSuchTask", {}, HarnessError, "NoSuchTask"),
        ("demo-clip", [], {}, HarnessError, "no task given"),
        ("demo-clip", [3], {}, HarnessError, "a task must be a name.*got int"),
        (3, "DemoShapesT2IRetrieval", {}, HarnessError, "model must be.*got int"),
        ("demo-clip", "DemoShapesT2IRetrieval", {"batch_size": 0}, HarnessError, "batch_size"),
        (
            ColourMeans(),
            "DemoShapesT2IRetrieval",
            {"model_options": {"max_length": 8}},
            HarnessError,
            "adapter object already built",
        ),
    ],
)
def test_bad_calls_are_refused_clearly(
    model: Any, tasks: Any, settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        harness.evaluate(model, tasks, **settings)


SCRIPT = """
import json, os, sys
import harness
light = "torch" not in sys.modules
results = harness.evaluate(
    sys.argv[1], [sys.argv[2], "DemoShapesT2IRetrieval"], limit=3, num_workers=0,
    model_options={"max_length": 10},
)
print(json.dumps({
    "light": light,
    "package": harness.__file__,
    "tasks": [r.task_name for r in results],
    "max_length": results[0].harness.model.options["max_length"],
    "folder": sorted(os.listdir(".")),
}))
"""


def test_it_takes_nothing_from_the_current_folder(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path
) -> None:
    """Run from a folder holding `harness`, `tasks`, `model_adapters`, `leaderboard` and `results`
    packages and a file named like a built-in task; the script lives elsewhere (as `python
    script.py` puts its own folder, not the current one, on sys.path)."""
    cwd, scripts = tmp_path / "project", tmp_path / "scripts"
    for name in ("harness", "tasks", "model_adapters", "leaderboard", "results"):
        (cwd / name).mkdir(parents=True)
        (cwd / name / "__init__.py").write_text("raise ImportError('the wrong package')\n")
    (cwd / "DemoShapesT2IRetrieval").write_text("not a task file\n")
    scripts.mkdir()
    (scripts / "run_api.py").write_text(textwrap.dedent(SCRIPT))
    before = listing(cwd)
    done = subprocess.run(
        [sys.executable, str(scripts / "run_api.py"), str(tiny_clip_dir), str(task_file)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["light"] is True
    assert Path(report["package"]).resolve() == REPO / "harness" / "__init__.py"
    assert report["tasks"] == [TASK, "DemoShapesT2IRetrieval"]
    assert report["max_length"] == 10
    assert listing(cwd) == before
