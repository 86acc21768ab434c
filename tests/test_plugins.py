"""Open registries: model families and task types from installed plugins (entry points)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.core import plugins
from harness.core.errors import HarnessError
from harness.core.plugins import PluginError, Registry
from harness.model_adapters.family import Family, LoadRequest
from tests.dataset_fixtures import colour_retrieval, fake_meta, retrieval_task_yaml

REPO = Path(__file__).resolve().parent.parent
# A text family that embeds letter counts, and a retrieval type under a name of its own.
FAMILY_MODULE = """
import numpy as np

from harness.core.adapter import AdapterMeta
from harness.model_adapters.family import Family, LoadRequest


class LetterCounts:
    def __init__(self, request: LoadRequest) -> None:
        self.meta = AdapterMeta(
            name=request.name, revision=request.revision, family="toy-letters",
            similarity="cosine", modalities=("text",), dtype=request.dtype, embed_dim=26,
        )

    def encode(self, items, *, role=None, instruction=None):
        vectors = np.full((len(items), 26), 0.1, dtype=np.float32)
        for row, item in enumerate(items):
            for char in item["text"].lower():
                if "a" <= char <= "z":
                    vectors[row, ord(char) - ord("a")] += 1
        return vectors


FAMILY = Family(
    name="toy-letters",
    modalities=("text",),
    factory=LetterCounts,
    detects=lambda files: files.file("letters.json") is not None,
)
"""
TASK_TYPE_MODULE = """
from harness.tasks.retrieval import Retrieval


class ToyRetrieval(Retrieval):
    name = "toy_retrieval"
"""


def install_plugin(site: Path, entry_points: dict[str, dict[str, str]], **modules: str) -> Path:
    """A distribution ``toy-plugin 0.1`` on the folder ``site``: package ``toy_plugin`` with
    ``modules``, and a dist-info declaring ``entry_points`` ({group: {name: value}})."""
    package = site / "toy_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, source in modules.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    sections = [
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
        for group, points in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections))
    return site


def harness(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``harness ARGV`` in a fresh interpreter that sees the plugins installed on ``site``."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def toy_model(root: Path) -> Path:
    """A model directory that the toy family recognises."""
    root.mkdir()
    (root / "letters.json").write_text("{}")
    return root


def test_plugin_family_and_task_type_are_found_and_used(tmp_path: Path) -> None:
    site = install_plugin(
        tmp_path / "site",
        {
            "harness.model_families": {"toy-letters": "toy_plugin.family:FAMILY"},
            "harness.task_types": {"toy_retrieval": "toy_plugin.task_type:ToyRetrieval"},
        },
        family=FAMILY_MODULE,
        task_type=TASK_TYPE_MODULE,
    )
    data = colour_retrieval(tmp_path / "data", "t2t")
    task = retrieval_task_yaml(tmp_path / "toy.yaml", "ToyColours", data, "t2t")
    task.write_text(task.read_text().replace("type: retrieval", "type: toy_retrieval"))
    model = toy_model(tmp_path / "letters-model")
    out = tmp_path / "out"

    done = harness(
        site,
        "run",
        "--model",
        str(model),
        "--tasks",
        str(task),
        "--output",
        str(out),
        "--no-cache",
        "--quiet",
        "--num-workers",
        "0",
    )

    assert done.returncode == 0, done.stderr
    [result_file] = out.rglob("ToyColours.json")
    result = json.loads(result_file.read_text())
    assert result["harness"]["model"]["family"] == "toy-letters"
    assert result["harness"]["task"]["type"] == "toy_retrieval"
    assert 0 < result["scores"]["test"][0]["main_score"] <= 1


def test_plugin_that_fails_to_import_is_a_clear_error(tmp_path: Path) -> None:
    site = install_plugin(
        tmp_path / "site",
        {"harness.model_families": {"toy-letters": "toy_plugin.family:FAMILY"}},
        family="import not_installed_anywhere\n",
    )
    model = toy_model(tmp_path / "letters-model")

    done = harness(
        site, "run", "--model", str(model), "--tasks", "DemoShapesT2IRetrieval", "--dry-run"
    )

    assert done.returncode == 2
    assert "plugin toy-plugin 0.1" in done.stderr
    assert "failed to load: ModuleNotFoundError" in done.stderr
    assert "Traceback" not in done.stderr


def test_plugin_that_clashes_with_a_builtin_name_is_refused(tmp_path: Path) -> None:
    site = install_plugin(
        tmp_path / "site",
        {"harness.task_types": {"retrieval": "toy_plugin.task_type:ToyRetrieval"}},
        task_type=TASK_TYPE_MODULE,
    )

    done = harness(site, "tasks", "--type", "retrieval")

    assert done.returncode == 2
    assert "registers the task type 'retrieval', which is built in" in done.stderr
    assert "Traceback" not in done.stderr


def fake_registry(
    monkeypatch: pytest.MonkeyPatch, points: list[metadata.EntryPoint]
) -> Registry[int]:
    """A registry of ints (built in: ``one``) whose group holds ``points``."""
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: points)

    def adopt(name: str, loaded: object) -> int:
        if not isinstance(loaded, int):
            raise TypeError(f"expected an int, got {loaded!r}")
        return loaded

    return Registry("number", "toy.numbers", {"one": 1}, adopt)


def test_plugins_are_listed_without_being_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_numbers.py").write_text("TWO = 2\nWORD = 'two'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    point = metadata.EntryPoint("two", "toy_numbers:TWO", "toy.numbers")
    registry = fake_registry(monkeypatch, [point])

    assert list(registry) == ["one", "two"] and "two" in registry and len(registry) == 2
    assert "toy_numbers" not in sys.modules
    assert registry["two"] == 2 and registry["one"] == 1
    assert "toy_numbers" in sys.modules
    monkeypatch.delitem(sys.modules, "toy_numbers")


def test_plugin_of_the_wrong_kind_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_words.py").write_text("WORD = 'two'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = fake_registry(
        monkeypatch, [metadata.EntryPoint("two", "toy_words:WORD", "toy.numbers")]
    )

    with pytest.raises(PluginError, match="is not a valid number: expected an int, got 'two'"):
        registry["two"]
    monkeypatch.delitem(sys.modules, "toy_words")


def test_two_plugins_with_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = fake_registry(
        monkeypatch,
        [
            metadata.EntryPoint("two", "first:TWO", "toy.numbers"),
            metadata.EntryPoint("two", "second:TWO", "toy.numbers"),
        ],
    )

    with pytest.raises(PluginError, match="registers the number 'two', which is also registered"):
        list(registry)


def test_family_whose_adapter_embeds_other_inputs_is_refused() -> None:
    text_only = SimpleNamespace(meta=fake_meta("toy", modalities=("text",)))
    family = Family(name="toy", modalities=("image", "text"), factory=lambda request: text_only)

    with pytest.raises(HarnessError, match=r"declares the modalities \['image', 'text'\]"):
        family.load(LoadRequest(source="nowhere", name="toy", revision="1"))
