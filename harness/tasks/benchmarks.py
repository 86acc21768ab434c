"""Benchmarks: named task lists (``mieb-lite``, ``vidore-v1``...), declared in benchmarks.yaml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from harness.core.errors import HarnessError, UnknownNameError
from harness.tasks.registry import YAML_LOADER, builtin_tasks

BENCHMARKS_FILE = Path(__file__).parent / "benchmarks.yaml"


class Benchmark(BaseModel):
    """A named list of catalog tasks; ``mteb_name`` names the mteb benchmark it mirrors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    tasks: tuple[str, ...]
    mteb_name: str | None = None
    reference: str | None = None

    def missing_tasks(self) -> list[str]:
        """The benchmark's tasks that the catalog does not define (yet)."""
        known = builtin_tasks()
        return [name for name in self.tasks if name not in known]


@cache
def builtin_benchmarks() -> dict[str, Benchmark]:
    """Every declared benchmark, by name."""
    document = yaml.load(BENCHMARKS_FILE.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    benchmarks = [Benchmark.model_validate(entry) for entry in document["benchmarks"]]
    return {benchmark.name: benchmark for benchmark in benchmarks}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark of that name; an unknown name is refused with the closest names."""
    known = builtin_benchmarks()
    if name not in known:
        raise UnknownNameError("benchmark", name, known, hint="See `harness benchmarks`.")
    return known[name]


def benchmark_task_names(name: str) -> list[str]:
    """The task names of a benchmark that can run: refused when the catalog lacks any of them."""
    benchmark = get_benchmark(name)
    missing = benchmark.missing_tasks()
    if missing:
        raise HarnessError(
            f"benchmark {name} lists {len(missing)} task(s) that the catalog does not define yet: "
            f"{', '.join(missing)}. Run the defined ones with --tasks (see "
            f"`harness tasks --benchmark {name}`), or add the missing entries."
        )
    return list(benchmark.tasks)
