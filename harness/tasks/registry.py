"""Task types and task definitions by name; custom YAML task files by path."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.core.errors import HarnessError, UnknownNameError
from harness.core.plugins import Registry
from harness.tasks.base import TaskType
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import check_local_path

DEFINITIONS_DIR = Path(__file__).parent / "definitions"
# libyaml's safe loader when PyYAML was built with it (about 10x faster), else the pure one.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A task file's nodes once its aliases are expanded; the catalog's largest file has ~3,000.
MAX_YAML_NODES = 100_000
# Entry-point group under which installed plugins declare task types: ``name = module:Class``,
# the class a ``TaskType`` subclass whose ``name`` is the entry point's.
TASK_TYPES_GROUP = "harness.task_types"
# The built-in task types by name, each "module:Class" imported on first use; a new type adds
# one line here (or is a plugin).
BUILTIN_TYPES = {
    "retrieval": "harness.tasks.retrieval:Retrieval",
    "zero_shot_classification": "harness.tasks.zero_shot:ZeroShotClassification",
    "clustering": "harness.tasks.clustering:Clustering",
    "multiple_choice": "harness.tasks.multiple_choice:MultipleChoice",
    "visual_sts": "harness.tasks.visual_sts:VisualSTS",
    "linear_probe": "harness.tasks.linear_probe:LinearProbe",
    "multilabel_classification": "harness.tasks.multilabel:MultilabelClassification",
    "compositionality": "harness.tasks.compositionality:Compositionality",
    "pair_classification": "harness.tasks.pair_classification:PairClassification",
    "reranking": "harness.tasks.reranking:Reranking",
    "clustering_fast": "harness.tasks.clustering_fast:ClusteringFast",
}


def _adopt_type(name: str, loaded: object) -> TaskType:
    """The task type a loaded class stands for: a ``TaskType`` subclass named ``name``."""
    if not (isinstance(loaded, type) and issubclass(loaded, TaskType)):
        raise TypeError(f"expected a subclass of harness.tasks.base.TaskType, got {loaded!r}")
    if loaded.name != name:
        raise ValueError(f"its class says its name is {loaded.name!r}, not {name!r}")
    return loaded()


# Every task type by name: the built-in ones and the installed plugins'. Listing the names imports
# no task type; looking one up imports its module.
TASK_TYPES: Registry[TaskType] = Registry("task type", TASK_TYPES_GROUP, BUILTIN_TYPES, _adopt_type)


def task_type(task: TaskDefinition) -> TaskType:
    """The type object that evaluates ``task``."""
    try:
        return TASK_TYPES[task.type]
    except KeyError:
        raise UnknownNameError(
            "task type", task.type, TASK_TYPES, hint=f"(task {task.name})"
        ) from None


def task_record(task: TaskDefinition) -> dict[str, Any]:
    """The task as a result records it: its definition with the resolved protocol and main
    score."""
    kind = task_type(task)
    record = task.model_dump(mode="json")
    record["protocol"] = kind.protocol(task).model_dump(mode="json")
    record["main_score"] = kind.main_score(task)
    return record


def load_task_file(path: Path) -> list[TaskDefinition]:
    """Task definitions from a YAML file holding one mapping, a list, or ``tasks: [...]``."""
    document = read_yaml(path)
    entries = document.get("tasks", [document]) if isinstance(document, dict) else document
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise HarnessError(f"task file {path}: expected a mapping, a list, or `tasks: [...]`")
    definitions = []
    for entry in entries:
        try:
            definition = TaskDefinition.model_validate({**entry, "source_file": path.resolve()})
        except ValidationError as error:
            raise HarnessError(f"task file {path}: invalid task definition:\n{error}") from error
        task_type(definition).check(definition)
        check_local_path(definition)
        definitions.append(definition)
    return definitions


def read_yaml(path: Path) -> object:
    """A YAML file's document; a clear error for a file that is not UTF-8 or not YAML, or
    whose aliases would expand past ``MAX_YAML_NODES`` nodes (refused before building it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise HarnessError(
            f"task file {path} is not UTF-8 text ({error.reason} at byte {error.start}). "
            "Save it as UTF-8."
        ) from None
    except OSError as error:
        raise HarnessError(f"cannot read task file {path}: {error.strerror}") from None
    loader = YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "&" in text and _expanded_size(node, {}) > MAX_YAML_NODES:
            raise HarnessError(
                f"task file {path}: its aliases expand to more than {MAX_YAML_NODES:,} nodes "
                "(a YAML alias bomb?); refused. Write the entries out, or use fewer aliases."
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise HarnessError(f"cannot read task file {path}: {error}") from None
    except RecursionError:
        raise HarnessError(f"task file {path} is nested too deeply to be a task file") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once every alias is expanded; an aliased node is
    counted once per use but walked once (``sizes``), so a bomb is measured in linear time."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 1  # a node that contains itself counts once
        if isinstance(node, yaml.SequenceNode):
            sizes[key] += sum(_expanded_size(child, sizes) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            sizes[key] += sum(
                _expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value
            )
    return sizes[key]


@cache
def builtin_tasks() -> dict[str, TaskDefinition]:
    """Every built-in definition, by name."""
    tasks: dict[str, TaskDefinition] = {}
    for path in sorted(DEFINITIONS_DIR.glob("*.yaml")):
        for definition in load_task_file(path):
            if definition.name in tasks:
                raise HarnessError(f"task {definition.name} is defined twice (in {path})")
            tasks[definition.name] = definition
    return tasks


def demo_tasks() -> list[str]:
    """The embedded offline benchmark: every task defined in ``definitions/demo*.yaml``."""
    return [
        definition.name
        for path in sorted(DEFINITIONS_DIR.glob("demo*.yaml"))
        for definition in load_task_file(path)
    ]


def resolve_tasks(specs: Sequence[str]) -> list[TaskDefinition]:
    """Names and YAML paths to definitions; every unknown name is reported before anything runs."""
    known = builtin_tasks()
    resolved: list[TaskDefinition] = []
    unknown: list[UnknownNameError] = []
    for spec in (s.strip() for s in specs):
        if not spec:
            raise HarnessError("empty task name in --tasks (check for a stray comma)")
        if spec.endswith((".yaml", ".yml")) or Path(spec).is_file():
            if not Path(spec).is_file():
                raise HarnessError(f"task file {spec} does not exist")
            resolved.extend(load_task_file(Path(spec)))
        elif spec in known:
            resolved.append(known[spec])
        else:
            unknown.append(
                UnknownNameError("task", spec, known, hint="See `harness tasks` for the list.")
            )
    if unknown:
        raise HarnessError(" ".join(str(error) for error in unknown) + " Nothing was run.")
    names = [task.name for task in resolved]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise HarnessError(f"task(s) named more than once: {', '.join(duplicates)}")
    return resolved
