"""The leaderboard, `validate` and `submit` cannot be gamed or used to leak files (issue 13, 8).

A results folder holds valid results, links (to a file and a folder outside, holding a secret)
and forged files; the site shows none of the linked content nor any forged score, lists every
forged or linked file on ``skipped.html`` with its reason, shows a custom task apart, and gives
each revision of a model its own row.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.app.cli import main
from harness.app.submission import InvalidSubmission, submit
from harness.core.errors import HarnessError
from harness.engine.results import read_json
from harness.engine.validation import MAX_METRICS, MAX_SPLITS, validate
from harness.leaderboard.collect import ModelKey
from harness.leaderboard.site import model_page_name
from tests.leaderboard_fixtures import T1, T2, result_payload, write_payload, write_table

SECRET = "SECRET-7f3a"
Payload = dict[str, Any]


def _set_scores(value: Any, metric: Any = None) -> Callable[[Payload], None]:
    """Set the main score (and the value of the metric it names) of the test split."""

    def edit(payload: Payload) -> None:
        entry = payload["scores"]["test"][0]
        entry["main_score"] = value
        if metric is not None:
            entry[payload["harness"]["task"]["main_score"]] = metric

    return edit


def _interval(payload: Payload) -> None:
    payload["harness"]["intervals"] = {"test": {"default": {"low": 0.633, "high": 0.644}}}


def _extra_split(payload: Payload) -> None:
    payload["scores"]["dev"] = [dict(payload["scores"]["test"][0], main_score=0.655)]
    payload["scores"]["dev"][0]["ndcg_at_10"] = 0.655
    payload["harness"]["units"]["dev"] = payload["harness"]["units"]["test"]


def _limit(payload: Payload) -> None:
    payload["harness"]["run_settings"]["limit"] = 5


def _many_splits(payload: Payload) -> None:
    payload["scores"] |= {f"s{i}": payload["scores"]["test"] for i in range(MAX_SPLITS)}


def _many_metrics(payload: Payload) -> None:
    payload["scores"]["test"][0].update({f"m{i}": 0.6 for i in range(MAX_METRICS)})


def _other_protocol(payload: Payload) -> None:
    """A file that claims its own main score and splits for a built-in task."""
    payload["harness"]["task"]["main_score"] = "recall_at_1000"


# Forged files: (model, edit of a valid T1 result at 0.9, the forged score, words of the reason).
FORGED: dict[str, tuple[Callable[[Payload], None], str, str]] = {
    "units": (_set_scores(0.611, 0.611), "0.611", "recomputed from its own per-unit scores"),
    "metric": (_set_scores(0.622), "0.622", "not the value of the metric it names"),
    "interval": (_interval, "0.633", "lies outside its stored interval"),
    "split": (_extra_split, "0.655", "not evaluated by the task (refused)"),
    "limit": (_limit, "", "`--limit 5` run"),
    "bool": (_set_scores(True, True), "", "is 'bool', not a finite number"),
    "metrics": (_many_metrics, "", f"at most {MAX_METRICS}"),
    "splits": (_many_splits, "", f"{MAX_SPLITS + 1} splits; a result file holds at most"),
    "protocol": (_other_protocol, "", "differ from built-in task"),
}
# Files whose text is forged: (model, replacement in the JSON text, forged score, reason).
FORGED_TEXT = {
    "dupkey": ('"main_score": 0.9,', '"main_score": 0.699, "main_score": 0.9,', "0.699", "twice"),
    "nan": ('"main_score": 0.9,', '"main_score": NaN,', "", "bare NaN"),
    "huge": ('"main_score": 0.9,', '"main_score": 1e999,', "", "too large"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A results folder with valid results, links to secrets, and forged files; its site."""
    root = tmp_path_factory.mktemp("hostile")
    results = write_table(root / "results")
    outside = root / "outside"
    # A valid result of a secret model, outside the results folder: linked as a file, in a
    # linked folder, and as a folder's model_meta.json.
    secret = write_payload(outside, "secret", result_payload(SECRET, T2, 0.123))
    (results / "linked-file" / "r1").mkdir(parents=True)
    (results / "linked-file" / "r1" / f"{T2}.json").symlink_to(secret)
    (results / "linked-folder").symlink_to(outside / "secret", target_is_directory=True)
    meta_link = write_payload(results, "meta-link", result_payload("meta-link", T1, 0.5))
    (meta_link.parent / "model_meta.json").unlink()
    (meta_link.parent / "model_meta.json").symlink_to(secret.parent / "model_meta.json")
    # A file that is not JSON and quotes the secret.
    broken = results / "model0" / "r1" / "Broken.json"
    broken.write_text('{"task_name": "' + SECRET + '", oops', encoding="utf-8")
    paths = {"secret-file": secret, "broken": broken}
    for kind, (edit, _, _) in FORGED.items():
        payload = result_payload(f"forged-{kind}", T1, 0.9)
        edit(payload)
        paths[kind] = write_payload(results, f"forged-{kind}", payload)
    for kind, (old, new, _, _) in FORGED_TEXT.items():
        path = write_payload(results, f"forged-{kind}", result_payload(f"forged-{kind}", T1, 0.9))
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        paths[kind] = path
    # A custom task, and two revisions of one model where the older claims the later date.
    paths["custom"] = write_payload(results, "custom", result_payload("own", "MyOwnTask", 0.688))
    for revision, score, date in (("ckpt-1", 0.2, "2026-09-01T00:00:00Z"), ("ckpt-2", 0.4, "")):
        payload = result_payload("twin", T1, score, revision=revision, date=date or "2026-01-01")
        write_payload(results, "twin", payload)
    out = root / "site"
    assert main(["leaderboard", "--results", str(results), "--out", str(out)]) == 0
    return {"results": results, "site": out, **paths}


def _pages(site: Path) -> dict[str, str]:
    """Every file built from the results: pages, downloads, raw copies (not the bundled
    ``static/`` assets, which are the same for every site)."""
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in site.rglob("*")
        if p.is_file() and p.relative_to(site).parts[0] != "static"
    }


def _skipped(site: Path) -> dict[str, str]:
    """``{path: reasons}`` of the skipped page (a file may be listed for several reasons)."""
    page = (site / "skipped.html").read_text(encoding="utf-8")
    reasons: dict[str, str] = {}
    for path, reason in re.findall(r"<li><code>([^<]*)</code>: ([^<]*)</li>", page):
        key = html.unescape(path)
        reasons[key] = reasons.get(key, "") + html.unescape(reason) + "\n"
    return reasons


def test_no_linked_content_reaches_any_page(hostile: dict[str, Path]) -> None:
    for name, text in _pages(hostile["site"]).items():
        assert SECRET not in text, name
        assert "0.123" not in text, name
    skipped = _skipped(hostile["site"])
    results = hostile["results"]
    for link in (
        results / "linked-file" / "r1" / f"{T2}.json",
        results / "linked-folder",
        results / "meta-link" / "r1" / "model_meta.json",
    ):
        assert "a symbolic link (not followed, not read)" in skipped[str(link)]
    meta_link = results / "meta-link" / "r1" / f"{T1}.json"
    assert "model_meta.json is not valid" in skipped[str(meta_link)]


def test_a_parse_error_names_the_position_not_the_content(hostile: dict[str, Path]) -> None:
    reason = _skipped(hostile["site"])[str(hostile["broken"])]
    assert re.search(r"not valid JSON \(.* at line 1, column \d+\)", reason)


def test_each_forged_file_is_listed_and_its_score_shown_nowhere(hostile: dict[str, Path]) -> None:
    skipped = _skipped(hostile["site"])
    pages = _pages(hostile["site"])
    del pages["skipped.html"]  # it names the files and their reasons, nothing else
    assert not [name for name, text in pages.items() if "forged-" in text]
    forged = {kind: (s, why) for kind, (_, s, why) in FORGED.items()}
    forged |= {kind: (s, why) for kind, (_, _, s, why) in FORGED_TEXT.items()}
    for kind, (score, reason) in forged.items():
        assert reason in skipped[str(hostile[kind])], kind
        if score:
            assert not [name for name, text in pages.items() if score in text], kind
    assert len(skipped) == len(forged) + 1 + 3 + 1  # the broken file, 3 links, meta-link's result


def test_custom_task_is_shown_apart_and_never_ranked(hostile: dict[str, Path]) -> None:
    pages = _pages(hostile["site"])
    assert "MyOwnTask" in pages["custom.html"] and "0.6880" in pages["custom.html"]
    shown = {name for name, text in pages.items() if "MyOwnTask" in text}
    assert {name for name in shown if not name.endswith(".json")} == {"custom.html", "custom.csv"}
    assert shown - {"custom.html", "custom.csv", "custom.json"}  # and its raw copy
    assert "0.6880" not in pages["index.html"]


def test_each_revision_is_its_own_row(hostile: dict[str, Path]) -> None:
    index = (hostile["site"] / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr data-name="twin" data-revision="([^"]*)"', index)
    assert sorted(rows) == ["ckpt-1", "ckpt-2"]
    for revision, score in (("ckpt-1", "0.2000"), ("ckpt-2", "0.4000")):
        page = hostile["site"] / model_page_name(ModelKey("twin", revision))
        assert f"Revision: {revision}" in page.read_text(encoding="utf-8")
        assert score in page.read_text(encoding="utf-8")


def test_validate_lists_the_same_problems(hostile: dict[str, Path]) -> None:
    """`harness validate` and the leaderboard apply one set of checks."""
    validation = validate(hostile["results"])
    flagged = {str(problem.file) for problem in validation.problems}
    assert set(_skipped(hostile["site"])) - flagged == {
        str(hostile["results"] / "meta-link" / "r1" / f"{T1}.json")  # flagged via its folder
    }
    assert str(hostile["custom"]) in flagged  # validate refuses a custom task


def test_read_json_never_echoes_content(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    for text in ('{"a": "' + SECRET, '{"a": 1, "a": "' + SECRET + '"}', SECRET):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(HarnessError, match="not valid JSON") as refused:
            read_json(path)
        assert SECRET not in str(refused.value)
    path.write_bytes(b'{"a": "\xff' + SECRET.encode() + b'"}')
    with pytest.raises(HarnessError, match=r"not UTF-8 text \(byte 7\)") as refused:
        read_json(path)
    assert SECRET not in str(refused.value)


def test_submit_refuses_a_limit_run_and_links(tmp_path: Path) -> None:
    payload = result_payload("m", T1, 0.9)
    _limit(payload)
    write_payload(tmp_path / "limited", "m", payload)
    with pytest.raises(InvalidSubmission, match="`--limit 5` run"):
        submit(tmp_path / "limited", tmp_path / "tree")
    linked = tmp_path / "linked"
    real = write_payload(tmp_path / "real", "m", result_payload("m", T1, 0.9))
    (linked / "m").mkdir(parents=True)
    (linked / "m" / "r1").symlink_to(real.parent, target_is_directory=True)
    assert main(["submit", str(linked), "--to", str(tmp_path / "tree")]) == 1
    assert not (tmp_path / "tree").exists()


def test_submit_refuses_another_fingerprint_for_a_filed_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    write_payload(tmp_path / "first", "m", result_payload("m", T1, 0.9, fingerprint="fp-a"))
    submit(tmp_path / "first", tree)
    other = result_payload("m", T2, 0.5, fingerprint="fp-b")
    write_payload(tmp_path / "second", "m", other)
    before = sorted(p.name for p in tree.rglob("*"))
    assert main(["submit", str(tmp_path / "second"), "--to", str(tree), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "already filed" in err and "another model fingerprint" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tree.rglob("*")) == before


def test_two_fingerprints_of_one_revision_are_refused_together(tmp_path: Path) -> None:
    write_payload(tmp_path / "a", "m", result_payload("m", T1, 0.9, fingerprint="fp-a"))
    write_payload(tmp_path / "b", "m", result_payload("m", T2, 0.5, fingerprint="fp-b"))
    problems = validate([tmp_path / "a", tmp_path / "b"]).problems
    assert [p.check for p in problems] == ["fingerprint", "fingerprint"]
    assert "2 different model fingerprints" in problems[0].message


def test_a_clean_folder_validates_and_submits(tmp_path: Path) -> None:
    """The fixtures above fail for their forgeries only: the same files unforged are valid."""
    results = write_table(tmp_path / "results")
    assert validate(results).ok
    filed = submit(results, tmp_path / "tree")
    assert {entry.status for entry in filed} == {"added"}
    assert json.loads(next((tmp_path / "tree").rglob(f"{T1}.json")).read_text())
