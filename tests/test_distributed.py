"""Data-parallel sharding: balanced, deterministic, complete; costs read without decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.app.cli import main, torchrun_command
from harness.core.image import EncodedImage
from harness.core.items import RawItem
from harness.engine.cache import EmbeddingCache
from harness.engine.distributed import Shards, item_cost
from tests.dataset_fixtures import png_bytes

ROOT = Path(__file__).resolve().parent.parent
# Text and images, a linear probe and a clustering: every kind of encoder call.
TASKS = ["DemoShapesT2IRetrieval", "DemoShapesClassification", "DemoShapesClustering"]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_every_batch_goes_to_exactly_one_rank(world_size: int) -> None:
    costs = [5.0, 1.0, 1.0, 9.0, 2.0, 2.0, 7.0, 3.0]
    assigned = [Shards(rank, world_size).my_batches(costs) for rank in range(world_size)]
    flat = sorted(batch for batches in assigned for batch in batches)
    assert flat == list(range(len(costs)))
    loads = [sum(costs[b] for b in batches) for batches in assigned]
    assert max(loads) - min(loads) <= max(costs)


def test_balance_is_by_cost_not_by_count() -> None:
    """One huge batch against many small ones: the huge one gets a rank to itself."""
    costs = [100.0] + [1.0] * 10
    assert Shards(0, 2).my_batches(costs) == [0]
    assert Shards(1, 2).my_batches(costs) == list(range(1, 11))


def test_item_cost_counts_pixels_and_characters() -> None:
    image = RawItem.of("a", image=EncodedImage(data=png_bytes((1, 2, 3), size=20)))
    assert item_cost(image) == 20 * 20 + 1
    assert item_cost(RawItem.of("b", text="four")) == 5
    assert item_cost(image) > item_cost(RawItem.of("c", text="x" * 100))


# A launcher that kills rank 1 after its second model call, the way a crashed GPU worker dies.
DYING_RANK = """
import os, sys
from harness.app.cli import main
from harness.engine.encoding import BatchEncoder

call_model = BatchEncoder._call_model
calls = []

def dying(self, *args, **kwargs):
    calls.append(1)
    if os.environ["RANK"] == "1" and len(calls) > 2:
        os._exit(1)
    return call_model(self, *args, **kwargs)

BatchEncoder._call_model = dying
sys.exit(main(sys.argv[1:]))
"""


def harness_args(model: Path, out: Path, cache: Path) -> list[str]:
    args = ["run", "--model", str(model), "--tasks", ",".join(TASKS), "--output", str(out)]
    return [*args, "--cache-dir", str(cache), "--batch-size", "16", "--num-workers", "0", "--quiet"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """Two gloo ranks on this machine."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    return subprocess.run([*command, *args], cwd=ROOT, timeout=600, capture_output=True, text=True)


def results(out: Path) -> dict[str, dict]:
    """Each task's scores and per-unit data, as written."""
    found = {}
    for path in out.rglob("*.json"):
        if path.name != "model_meta.json":
            payload = json.loads(path.read_text())
            found[path.stem] = {"scores": payload["scores"], "units": payload["harness"]["units"]}
    return found


def encoded(out: Path, task: str) -> int:
    """How many inputs the writing process encoded for ``task``."""
    [path] = out.rglob(f"{task}.json")
    return json.loads(path.read_text())["harness"]["encoding"]["items_encoded"]


def test_gloo_ranks_score_as_one_process_and_survive_a_dead_rank(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    single, ranks, cache = tmp_path / "single", tmp_path / "ranks", tmp_path / "cache-ranks"
    subprocess.run(
        [sys.executable, "-m", "harness", *harness_args(tiny_clip_dir, single, tmp_path / "c1")],
        cwd=ROOT, timeout=600, check=True,
    )  # fmt: skip
    script = tmp_path / "dying_rank.py"
    script.write_text(DYING_RANK)
    died = torchrun(str(script), *harness_args(tiny_clip_dir, ranks, cache))
    assert died.returncode != 0, "the run went on with a dead rank"
    survived = len(EmbeddingCache(cache))
    assert survived > 0, "the batches finished before the failure were lost"

    rerun = torchrun("-m", "harness", *harness_args(tiny_clip_dir, ranks, cache))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert set(results(ranks)) == set(TASKS)
    assert results(ranks) == results(single)
    total = len(EmbeddingCache(cache))
    assert total == len(EmbeddingCache(tmp_path / "c1"))
    # Rank 0 (whose counts the files record) encoded a share of what was missing, not all of
    # it; the clustering task finds its images in the cache, filled by the linear probe.
    assert sum(encoded(ranks, task) for task in TASKS) < total - survived
    for task in TASKS[:2]:
        assert 0 < encoded(ranks, task) < encoded(single, task)


def test_devices_relaunch_under_torchrun_one_rank_per_gpu() -> None:
    argv = ["run", "--model", "m", "--devices", "0,2", "--tasks", "T", "--device", "cpu"]
    command = torchrun_command(argv, [0, 2])
    assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    assert command[6:] == [
        "-m",
        "harness",
        "run",
        "--model",
        "m",
        "--tasks",
        "T",
        "--device",
        "cpu",
        "--device",
        "cuda",
    ]


@pytest.mark.parametrize("devices", ["0,0", "a,b", "-1"])
def test_bad_device_lists_are_refused(devices: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--model", "m", "--tasks", "T", "--devices", devices])
    assert "GPU indices" in capsys.readouterr().err
