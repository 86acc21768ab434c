"""The built wheel installs into a fresh virtual environment with dependency versions other than
constraints.txt's pins, and the embedded demo run there scores as the committed results/ do.

The wheel is built from a clean copy of the checkout (no stale ``build/`` leftovers). torch is
not downloaded: the new environment sees this environment's torch through a ``.pth`` file that
adds a folder holding only torch's own top-level packages. The other dependencies come from the
package registry at the bottom of setup.cfg's ranges, not at constraints.txt's pins; the test
skips when the registry cannot be reached. Takes about 1.5 minutes on 2 cores (deselect with
``--deselect tests/test_wheel_install.py``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import zipfile
from importlib.metadata import distribution
from pathlib import Path, PurePosixPath

import pytest
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.test_packaging import ROOT, _constraints, _install_requires

# Releases at the bottom of setup.cfg's ranges, the ones its lower bounds were measured with
# (each has binary wheels for CPython 3.11); all but transformers differ from constraints.txt's
# pins. transformers is held at its lower bound so that a new release cannot change this test's
# outcome unnoticed.
OTHER_VERSIONS = {
    "numpy": "2.0.2",
    "scipy": "1.14.1",
    "pandas": "2.2.3",
    "pillow": "11.0.0",
    "pydantic": "2.12.0",
    "av": "14.0.0",
    "soundfile": "0.12.1",
    "soxr": "0.5.0.post1",
    "datasets": "5.0.0",
    "sentence-transformers": "6.0.0",
    "scikit-learn": "1.9.0",
    "transformers": "5.23.0",
}
# At least this many installed versions must differ from constraints.txt.
MIN_DIFFERING = 8
# The OCR baseline's results need Tesseract; without it they are left out, as `make regression`
# does.
OCR_BASELINE = "ocr-tesseract-minilm"
PIP_NETWORK = ("--timeout", "20", "--retries", "1")


def _run(
    command: list[str | Path],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``command``; fail the test with its output when it exits non-zero."""
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def _pip(python: str | Path, *arguments: str | Path) -> str:
    """Run pip with ``python``, up to 10 minutes; its standard output."""
    return _run([python, "-m", "pip", *arguments], timeout=600)


def _skip_unless_registry_reachable(folder: Path) -> None:
    """Skip, with the reason, when pip cannot fetch a small package from the registry."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "six", "-d", str(folder)]
    try:
        done = subprocess.run(
            [*command, *PIP_NETWORK], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip("the package registry did not answer within 60 s (pip download six)")
    if done.returncode != 0:
        pytest.skip(f"the package registry is unreachable (pip download six): {done.stderr[-300:]}")


def _build_wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of the checkout's tracked and unignored files."""
    listed = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        timeout=60,
        cwd=ROOT,
    )
    source = tmp / "source"
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp / "wheels"
    _pip(
        sys.executable,
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        wheels,
        source,
    )
    (wheel,) = wheels.glob("embedding_harness-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        tops = {PurePosixPath(name).parts[0] for name in archive.namelist()}
    # One import package: the task types, adapters and leaderboard live under `harness.`, so no
    # generic top-level name (`tasks`, `leaderboard`...) can clash with a user's code.
    assert {top for top in tops if not top.endswith(".dist-info")} == {"harness"}, tops
    return wheel


def _torch_only_folder(folder: Path) -> Path:
    """A folder of links to this environment's torch: its packages and its dist-info only."""
    torch = distribution("torch")
    folder.mkdir()
    for top in sorted({file.parts[0] for file in torch.files or () if file.parts[0] != ".."}):
        (folder / top).symlink_to(Path(str(torch.locate_file(top))))
    return folder


def _fresh_venv(path: Path, torch_folder: Path) -> Path:
    """A new virtual environment whose path also holds ``torch_folder``; returns its purelib."""
    _run([sys.executable, "-m", "venv", path], timeout=120)
    purelib = Path(
        _run(
            [
                path / "bin" / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            timeout=60,
        ).strip()
    )
    (purelib / "_torch_from_the_test_environment.pth").write_text(f"{torch_folder}\n")
    return purelib


def _installed_versions(venv: Path) -> dict[NormalizedName, str]:
    listed = _pip(venv / "bin" / "python", "list", "--format", "json")
    return {canonicalize_name(entry["name"]): entry["version"] for entry in json.loads(listed)}


def _main_scores(results: Path) -> dict[tuple[str, str, str], float]:
    """Every main score under ``results``, keyed by result file, split and subset."""
    scores: dict[tuple[str, str, str], float] = {}
    for path in sorted(results.rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        for split, entries in document.get("scores", {}).items():
            for entry in entries:
                key = (str(path.relative_to(results)), split, entry["hf_subset"])
                scores[key] = entry["main_score"]
    return scores


def _baseline(tmp: Path, output: Path) -> Path:
    """The committed results to compare with; without Tesseract, all but the OCR baseline's."""
    if shutil.which("tesseract"):
        return ROOT / "results"
    shutil.rmtree(output / OCR_BASELINE, ignore_errors=True)
    baseline = tmp / "baseline"
    shutil.copytree(ROOT / "results", baseline, ignore=shutil.ignore_patterns(OCR_BASELINE))
    return baseline


def test_built_wheel_runs_the_demo_with_other_dependency_versions(
    tmp_path: Path,
) -> None:
    _skip_unless_registry_reachable(tmp_path / "probe")
    ranges = {canonicalize_name(req.name): req.specifier for req in _install_requires()}
    for name, version in OTHER_VERSIONS.items():
        assert ranges[canonicalize_name(name)].contains(version), (
            f"{name}=={version} is outside setup.cfg's range {ranges[canonicalize_name(name)]}; "
            "update OTHER_VERSIONS"
        )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    wheel = _build_wheel(tmp_path)
    timings["build"] = time.perf_counter() - start

    start = time.perf_counter()
    venv = tmp_path / "venv"
    purelib = _fresh_venv(venv, _torch_only_folder(tmp_path / "torch-only"))
    requested = [f"{name}=={version}" for name, version in OTHER_VERSIONS.items()]
    _pip(
        venv / "bin" / "python",
        "install",
        "--only-binary",
        ":all:",
        *PIP_NETWORK,
        wheel,
        *requested,
    )
    timings["install"] = time.perf_counter() - start

    installed = _installed_versions(venv)
    for name, version in OTHER_VERSIONS.items():
        assert Version(installed[canonicalize_name(name)]) == Version(version), name
    assert not list(purelib.glob("torch-*.dist-info")), "pip installed torch instead of using ours"
    pins = _constraints()
    differing = sorted(
        f"{name} {installed[name]} (pinned {pins[name].specifier})"
        for name in installed.keys() & pins.keys()
        if Version(installed[name]) not in pins[name].specifier
    )
    assert len(differing) >= MIN_DIFFERING, differing

    # The demo from a folder that is not the checkout, with the installed console script.
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    output = tmp_path / "results"
    unset = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env |= {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HARNESS_CACHE": str(tmp_path / "harness-cache"),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    }
    imported = _run(
        [venv / "bin" / "python", "-c", "import harness; print(harness.__file__)"],
        timeout=60,
        cwd=cwd,
        env=env,
    )
    assert Path(imported.strip()).is_relative_to(purelib), imported
    harness = venv / "bin" / "harness"
    start = time.perf_counter()
    _run(
        [harness, "run", "--output", output, "--quiet", "--no-cache"], timeout=600, cwd=cwd, env=env
    )
    timings["demo"] = time.perf_counter() - start
    baseline = _baseline(tmp_path, output)
    _run([harness, "check", "--results", output, "--baseline", baseline], timeout=120, env=env)

    expected, scored = _main_scores(baseline), _main_scores(output)
    assert expected and scored.keys() == expected.keys()
    changed = {
        key: (expected[key], scored[key])
        for key in expected
        if not math.isclose(scored[key], expected[key], rel_tol=1e-9, abs_tol=1e-12)
    }
    assert not changed, f"scores differ from the committed results with {differing}: {changed}"
    print(
        "wheel install: "
        + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items())
        + f"; differing from constraints.txt: {', '.join(differing)}"
    )
