"""The documented GitHub Actions workflow: valid YAML whose harness commands parse."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from harness.app.cli import build_parser
from harness.tasks.registry import builtin_tasks

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "regression.yml"


def harness_commands(workflow: dict) -> list[list[str]]:
    """Every `harness ...` command line of the workflow, with its env values filled in."""
    env = workflow["env"]
    commands = []
    for step in workflow["jobs"]["check"]["steps"]:
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            command = line.split("|")[0].strip()
            for name, value in env.items():
                command = command.replace(f'"${name}"', shlex.quote(str(value)))
            if command.startswith("harness "):
                commands.append(shlex.split(command)[1:])
    return commands


def test_workflow_runs_then_checks_and_caches_embeddings() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    commands = harness_commands(workflow)
    assert [command[0] for command in commands] == ["run", "check"]
    for command in commands:
        build_parser().parse_args(command)
    assert set(workflow["env"]["TASKS"].split(",")) <= set(builtin_tasks())
    cached = [
        s["with"]["path"]
        for s in workflow["jobs"]["check"]["steps"]
        if "cache@" in s.get("uses", "")
    ]
    assert "${{ env.HARNESS_CACHE }}" in cached
