"""`harness run --model-args`: parsing, checking against the family, and the fingerprint, cache
and result reuse that the options take part in."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from harness.app.cli import main, parse_model_args, torchrun_command
from harness.app.fanout import plan_jobs, run_job
from harness.app.runner import RunSettings
from harness.core.errors import HarnessError
from harness.model_adapters.families import CLAP
from harness.model_adapters.family import Family
from tests.dataset_fixtures import colour_retrieval, retrieval_task_yaml

TASK = "ColourT2IRetrieval"


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model-args")
    return retrieval_task_yaml(root / f"{TASK}.yaml", TASK, colour_retrieval(root / TASK))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_length=8", {"max_length": 8}),
        ("a=1.5,b=-2,c=1e3", {"a": 1.5, "b": -2, "c": 1000.0}),
        ("a=true,b=False,c=null,d=None", {"a": True, "b": False, "c": None, "d": None}),
        ("padding=max_length, fusion = sum", {"padding": "max_length", "fusion": "sum"}),
        ('langs=["eng", "tha"],n=2', {"langs": ["eng", "tha"], "n": 2}),
        (
            'prompts={"query": "q: a, b", "document": "d"}',
            {"prompts": {"query": "q: a, b", "document": "d"}},
        ),
        ("p='x, y',q=\"1\"", {"p": "x, y", "q": "1"}),
        ("empty=''", {"empty": ""}),
        ("prompt=it's one word: ", {"prompt": "it's one word:"}),
        ("x=NaN", {"x": "NaN"}),
        ("languages=eng+tha", {"languages": "eng+tha"}),
    ],
)
def test_values_parse_as_json_words_or_text(text: str, expected: dict[str, Any]) -> None:
    assert parse_model_args(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("max_length", "expected key=value"),
        ("=3", "expected key=value"),
        ("a b=3", "expected key=value"),
        ("a=", "no value for a"),
        ("a=1,a=2", "a is given twice"),
        ("a='open", "unbalanced"),
        ('a={"k": 1', "unbalanced"),
        ("x=NaN,y=[1,", r"unbalanced '\]'"),
    ],
)
def test_malformed_model_args_are_refused(text: str, problem: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        parse_model_args(text)


def run_cli(model: Path, task: Path, tmp: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--model",
            str(model),
            "--tasks",
            str(task),
            "--output",
            str(tmp / "results"),
            "--cache-dir",
            str(tmp / "cache"),
            "--num-workers",
            "0",
            "--quiet",
            *extra,
        ]
    )


def stored(tmp: Path, model: Path) -> dict[str, Any]:
    files = list((tmp / "results").glob(f"{model.name}/*/{TASK}.json"))
    assert len(files) == 1
    return json.loads(files[0].read_text())["harness"]


def test_model_args_key_the_fingerprint_the_cache_and_the_stored_result(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tiny_clip_dir, task_file, tmp_path, "--model-args", "max_length=8") == 0
    first = stored(tmp_path, tiny_clip_dir)
    assert first["model"]["options"]["max_length"] == 8
    assert first["encoding"]["cache_hits"] == 0

    assert run_cli(tiny_clip_dir, task_file, tmp_path, "--model-args", "max_length=12") == 0
    second = stored(tmp_path, tiny_clip_dir)
    assert second["model"]["options"]["max_length"] == 12
    assert second["model"]["fingerprint"] != first["model"]["fingerprint"]
    assert second["encoding"]["cache_hits"] == 0  # no vector of the first run is reused
    assert second["identity"] != first["identity"]
    assert "recomputed" in capsys.readouterr().out  # the first run's result is not reused

    # The same arguments again: the cache serves every vector, and the fingerprint is stable.
    assert run_cli(tiny_clip_dir, task_file, tmp_path, "--model-args", "max_length=8") == 0
    third = stored(tmp_path, tiny_clip_dir)
    assert third["model"]["fingerprint"] == first["model"]["fingerprint"]
    assert third["encoding"]["cache_hits"] > 0
    assert third["encoding"]["model_calls"] == 0


def test_an_unknown_key_names_the_model_the_key_and_the_accepted_ones(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tiny_clip_dir, task_file, tmp_path, "--model-args", "max_lenght=8") == 2
    error = capsys.readouterr().err
    assert f"{tiny_clip_dir.name}' (clip family): unknown option(s) max_lenght" in error
    assert "max_lenght" in error and "max_length" in error and "padding" in error
    assert "Traceback" not in error
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))


def test_a_bad_value_is_refused_by_the_family_with_exit_2(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tiny_clip_dir, task_file, tmp_path, "--model-args", "padding=sideways") == 2
    error = capsys.readouterr().err
    assert "padding must be 'longest' or 'max_length', got 'sideways'" in error


def test_model_args_need_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model-args", "max_length=8"]) == 2
    assert "--model-args needs --model or --models" in capsys.readouterr().err


CLAP_KEYS = ("max_seconds", "max_length")


@pytest.mark.parametrize(
    "options", [frozenset({"max_seconds", "max_length"}), f"{__name__}:CLAP_KEYS"]
)
def test_a_family_that_declares_its_options_refuses_others_before_loading(
    options: frozenset[str] | str,
) -> None:
    family = Family(CLAP, ("audio", "text"), "tests.no_such_module:Nothing", options=options)
    family.check_options("my-clap", {"max_seconds": 5})
    with pytest.raises(HarnessError) as refused:
        family.check_options("my-clap", {"max_seconds": 5, "pooling": "mean"})
    assert str(refused.value) == (
        "model 'my-clap' (clap family): unknown option(s) pooling; the options it accepts: "
        "max_length, max_seconds"
    )


def test_model_args_travel_with_ray_jobs_and_torchrun_ranks(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path
) -> None:
    settings = RunSettings(
        output=tmp_path / "results",
        cache_dir=None,
        num_workers=0,
        show_progress=False,
        model_options={"max_length": 9},
    )
    shipped = pickle.loads(pickle.dumps(settings))  # as Ray ships a job's settings
    (job,) = plan_jobs([str(tiny_clip_dir)], [str(task_file)])
    (outcome,) = run_job(job, shipped)
    assert outcome.result is not None
    assert outcome.result.harness.model.options["max_length"] == 9

    argv = ["run", "--model", "m", "--model-args", "a=[1,2]", "--devices", "0,1"]
    command = torchrun_command(argv, [0, 1])
    assert command[command.index("--model-args") + 1] == "a=[1,2]"


def test_model_args_apply_to_each_of_several_models(
    tiny_clip_dir: Path, tiny_siglip_dir: Path, task_file: Path, tmp_path: Path
) -> None:
    models = f"{tiny_clip_dir},{tiny_siglip_dir}"
    extra = ("--no-cache", "--num-workers", "0", "--quiet", "--output", str(tmp_path))
    base = ["run", "--models", models, "--tasks", str(task_file), *extra]
    assert main([*base, "--model-args", "padding=longest,max_length=10"]) == 0
    for model in (tiny_clip_dir, tiny_siglip_dir):
        (file,) = tmp_path.glob(f"{model.name}/*/{TASK}.json")
        options = json.loads(file.read_text())["harness"]["model"]["options"]
        assert (options["padding"], options["max_length"]) == ("longest", 10)
