"""Dataset plumbing shared by task types: ``load_dataset`` at a pinned revision, with checks.

Hub ids and local directories take the same road: ``datasets.load_dataset(path, config,
split=..., revision=...)``. A local directory holds the hub layout (a README whose YAML front
matter declares the configs, or one folder per config).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError
from harness.core.modalities import registered
from tasks.datasets_memo import memoised
from tasks.definition import TaskDefinition

if TYPE_CHECKING:  # imported where used: listing tasks must not load `datasets`
    import datasets

DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".arrow")
_AFTER_SPLIT = "(?=[-_.0-9])"  # what follows a split's name in a file name


@lru_cache(maxsize=1)
def _split_in_name() -> re.Pattern[str]:
    """A data file named after a split: a shard as the hub names them
    (``<split>-00000-of-00001``), or a name starting with a split keyword that ``datasets``
    recognises (``validation.jsonl``)."""
    import datasets

    keywords = [word for words in datasets.data_files.SPLIT_KEYWORDS.values() for word in words]
    return re.compile(
        r"(.+?)(?=-\d{{5}}-of-\d{{5}})|({}){}".format(
            "|".join(sorted(keywords, key=len, reverse=True)), _AFTER_SPLIT
        )
    )


def dataset_revision(task: TaskDefinition) -> str:
    """The declared revision, or for an undeclared local directory a hash of its files."""
    check_local_path(task)
    if task.dataset.revision:
        return task.dataset.revision
    if not task.is_local:
        raise HarnessError(
            f"task {task.name}: dataset.path {task.dataset.path}: no such directory "
            f"({_local_candidate(task)}), and as a hub id it has no revision. Point "
            f"dataset.path at the dataset's folder, pass --data-dir {task.name}=PATH, or pin "
            "the hub revision with `revision:` so results are reproducible."
        )
    return local_content_hash(Path(task.dataset.path))


def check_local_path(task: TaskDefinition) -> None:
    """Refuse a dataset path that can only name a local directory (hub ids are ``org/name``)
    when no such directory exists."""
    path = task.dataset.path
    local = path.startswith((".", "/", "~")) or "\\" in path or path.count("/") > 1
    if local and not task.is_local:
        raise HarnessError(
            f"task {task.name}: dataset.path {path}: no such directory "
            f"({_local_candidate(task)}). Point dataset.path at the dataset's folder (a "
            f"relative path is read from the task file's folder), or pass --data-dir "
            f"{task.name}=PATH."
        )


def _local_candidate(task: TaskDefinition) -> Path:
    """Where the dataset path points as a local folder (relative to its task file)."""
    where = Path(task.dataset.path).expanduser()
    if task.source_file is not None and not where.is_absolute():
        where = task.source_file.parent / where
    return where.resolve()


def local_content_hash(root: Path) -> str:
    """``local-<hash>`` of a local dataset folder's file names and bytes."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _hash_files(str(root), stamp)


@lru_cache(maxsize=64)
def _hash_files(root: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """Memoised on names, sizes and modification times, so a folder is read once per run."""
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(str(Path(name).relative_to(root)).encode() + b"\0" + Path(name).read_bytes())
    return f"local-{digest.hexdigest()[:12]}"


def config_names(task: TaskDefinition) -> list[str]:
    """The dataset's config names."""
    import datasets

    path = task.dataset.path
    if task.is_local and not (Path(path) / "README.md").exists():
        return sorted(
            p.name for p in Path(path).iterdir() if p.is_dir() or p.suffix in DATA_SUFFIXES
        )
    try:
        return list(datasets.get_dataset_config_names(path, revision=task.dataset.revision))
    except Exception as error:
        raise _load_error(task, "its config names", error) from error


def resolve_config(task: TaskDefinition, part: str, candidates: Sequence[str]) -> str:
    """The config holding ``part``: as declared, else the first candidate the dataset has."""
    if part in task.dataset.configs:
        return task.dataset.configs[part]
    available = config_names(task)
    for name in candidates:
        if name in available:
            return name
    raise HarnessError(
        f"task {task.name}: dataset {task.dataset.path} has no config for {part!r} "
        f"(looked for {', '.join(candidates)}; found {', '.join(available) or 'none'}). "
        f"Name it under dataset.configs.{part} in the task definition."
    )


def load_part(task: TaskDefinition, part: str, config: str, split: str) -> datasets.Dataset:
    """Load one config's split (the part's declared split wins); a split the config lacks is
    an error naming the splits it has, never another split's rows under its name. A split is
    loaded once per process and shared by every task that reads it (``tasks.datasets_memo``)."""
    split = task.dataset.splits.get(part, split)
    path = task.dataset.path
    revision = local_content_hash(Path(path)) if task.is_local else task.dataset.revision
    return memoised((path, revision, config, split), lambda: _load_part(task, part, config, split))


def _load_part(task: TaskDefinition, part: str, config: str, split: str) -> datasets.Dataset:
    """``load_part`` without the memo."""
    import datasets

    path = task.dataset.path
    local_folder = Path(path) / config
    try:
        if task.is_local and not (Path(path) / "README.md").exists():
            files = _split_files(task, part, config, local_folder, split)
            return _load_local_files(files, _cache_dir(task))
        splits = datasets.get_dataset_split_names(path, config, revision=task.dataset.revision)
        if split not in splits:
            raise _missing_split(task, part, config, split, splits)
        return datasets.load_dataset(
            path, config, split=split, revision=task.dataset.revision, cache_dir=_cache_dir(task)
        )
    except HarnessError:
        raise
    except Exception as error:
        raise _load_error(task, f"config {config!r}, split {split!r}", error) from error


def _cache_dir(task: TaskDefinition) -> str | None:
    """For a local folder, a datasets cache keyed by its content.

    ``datasets`` caches a local folder under its name and file names, so two folders named
    alike (or one folder edited in place) would be served stale data from its default cache.
    """
    import datasets

    if not task.is_local:
        return None
    content = local_content_hash(Path(task.dataset.path))
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "harness-local" / content)


def _split_files(
    task: TaskDefinition, part: str, config: str, folder: Path, split: str
) -> list[Path]:
    """A config folder's files for ``split`` when no dataset card declares them: the
    ``<split>*`` files; all files when none is named after a split (one set for every split);
    an error when the files are named after other splits only."""
    if not folder.is_dir() and folder.name == "default":
        folder = folder.parent  # a single-config dataset keeps its files at the top
    files = sorted(p for p in folder.rglob("*") if p.suffix in DATA_SUFFIXES)
    if not files and folder.with_suffix(".parquet").exists():
        files = [folder.with_suffix(".parquet")]
    if not files:
        raise HarnessError(f"no data files (parquet, jsonl, csv) found for {folder}")
    named_split = re.compile(f"{re.escape(split)}{_AFTER_SPLIT}")
    chosen = [p for p in files if named_split.match(p.name)]
    if chosen:
        return chosen
    named = sorted(
        {m.group(1) or m.group(2) for p in files if (m := _split_in_name().match(p.name))}
    )
    if named:
        raise _missing_split(task, part, config, split, named)
    return files


def _load_local_files(files: list[Path], cache_dir: str | None) -> datasets.Dataset:
    """One dataset of local data files of one format."""
    import datasets

    builder = {".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}.get(files[0].suffix, "json")
    paths = [str(p) for p in files]
    return datasets.load_dataset(builder, data_files=paths, split="train", cache_dir=cache_dir)


def _missing_split(
    task: TaskDefinition, part: str, config: str, split: str, available: Sequence[str]
) -> HarnessError:
    return HarnessError(
        f"task {task.name}: dataset {task.dataset.path} has no split {split!r} in config "
        f"{config!r} (it has {', '.join(available) or 'none'}). Set eval_splits to splits "
        f"the dataset has, or name the split holding this part under dataset.splits.{part}."
    )


def require_columns(
    task: TaskDefinition, dataset: datasets.Dataset, config: str, columns: Sequence[str]
) -> None:
    """Raise a clear error naming each declared column the dataset lacks."""
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise HarnessError(
            f"task {task.name}: config {config!r} of {task.dataset.path} lacks the column(s) "
            f"{', '.join(missing)} (it has {', '.join(dataset.column_names)}). "
            "Map them under dataset.columns in the task definition."
        )


def column(task: TaskDefinition, name: str) -> str:
    """The dataset's name for a column the task type reads."""
    return task.dataset.columns.get(name, name)


def undecoded(dataset: datasets.Dataset, columns: Iterable[str]) -> datasets.Dataset:
    """``dataset`` with each of ``columns`` that holds a registered modality (an Image column,
    or a list of images...) read undecoded, so nothing is decoded in the main process; other
    columns are left as they are."""
    for name in columns:
        feature = dataset.features.get(name)
        stored = _undecoded_feature(feature)
        if stored is not None and stored != feature:
            dataset = dataset.cast_column(name, stored)
    return dataset


def _undecoded_feature(feature: Any) -> Any | None:
    """The feature that reads ``feature`` undecoded, by the first modality that knows it, or
    None when none does."""
    import datasets

    if isinstance(feature, datasets.List | datasets.LargeList):
        inner = _undecoded_feature(feature.feature)
        return None if inner is None else replace(feature, feature=inner)
    return next(
        (
            stored
            for entry in registered()
            if (stored := entry.undecoded_feature(feature)) is not None
        ),
        None,
    )


def _load_error(task: TaskDefinition, what: str, error: Exception) -> HarnessError:
    offline_hint = (
        " The Hugging Face hub is unreachable or offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and "
        "the dataset is not in the local cache: download it first, or point the task at a "
        "local copy (dataset.path in a custom task file)."
        if not task.is_local
        else ""
    )
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return HarnessError(
        f"task {task.name}: cannot load {what} of dataset {task.dataset.path} "
        f"(revision {task.dataset.revision or 'unpinned'}): {type(error).__name__}: "
        f"{first_line}.{offline_hint}"
    )
