"""Dataset plumbing shared by task types: ``load_dataset`` at a pinned revision, with checks.

Hub ids and local directories take the same road: ``datasets.load_dataset(path, config,
split=..., revision=...)``. A local directory holds the hub layout (a README whose YAML front
matter declares the configs), or, without a README, one folder or one data file per config:
``corpus.parquet`` (or ``corpus/``) is config ``corpus``; BEIR's own layout (``corpus.jsonl``,
``queries.jsonl``, ``qrels/test.tsv``) reads as it is. A config named with a trailing ``/``
(``queries/``, ``ar/queries/``) is a folder of the dataset, read with ``data_dir`` whether or not
the dataset has a card (JinaVDR's layout).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError
from harness.core.modalities import registered
from harness.tasks.datasets_memo import memoised
from harness.tasks.definition import TaskDefinition

if TYPE_CHECKING:  # imported where used: listing tasks must not load `datasets`
    import datasets

# The builder ``datasets`` reads each data file suffix with.
BUILDERS = {
    ".parquet": "parquet",
    ".jsonl": "json",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".arrow": "arrow",
}
DATA_SUFFIXES = tuple(BUILDERS)
# Identifier columns a delimited file holds as text, so ``007`` stays ``007`` (as in a jsonl
# corpus) rather than the number 7; a task's own name for one (``dataset.columns``) counts too.
TEXT_COLUMNS = ("id", "_id", "query-id", "corpus-id")
_AFTER_SPLIT = "(?=[-_.0-9]|$)"  # what follows a split's name in a file or folder name


@lru_cache(maxsize=1)
def _split_in_name() -> re.Pattern[str]:
    """A data file or folder named after a split: a shard as the hub names them
    (``<split>-00000-of-00001``), or a name starting with a split keyword that ``datasets``
    recognises (``validation.jsonl``, ``dev/``)."""
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
    if _without_card(task):
        return sorted(
            {p.name if p.is_dir() else p.stem for p in Path(path).iterdir() if _holds_data(p)}
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
    in_folder = (
        f", or store it in the dataset folder as {candidates[0]}.parquet (or .jsonl, .json, "
        f".csv, .tsv) or as a folder {candidates[0]}/"
        if _without_card(task)
        else ""
    )
    raise HarnessError(
        f"task {task.name}: dataset {task.dataset.path} has no config for {part!r} "
        f"(looked for {', '.join(candidates)}; found {', '.join(available) or 'none'}). "
        f"Name it under dataset.configs.{part} in the task definition{in_folder}."
    )


def _without_card(task: TaskDefinition) -> bool:
    """Whether the dataset is a local folder without a dataset card (its configs are its
    folders and data files)."""
    return task.is_local and not (Path(task.dataset.path) / "README.md").exists()


def _holds_data(path: Path) -> bool:
    """Whether ``path`` is a config of a folder without a card: a folder or a data file."""
    return path.is_dir() or (path.is_file() and path.suffix in DATA_SUFFIXES)


def load_part(task: TaskDefinition, part: str, config: str, split: str) -> datasets.Dataset:
    """Load one config's split (the part's declared split wins); a split the config lacks is
    an error naming the splits it has, never another split's rows under its name. A split is
    loaded once per process and shared by every task that reads it
    (``harness.tasks.datasets_memo``)."""
    split = task.dataset.splits.get(part, split)
    path = task.dataset.path
    revision = local_content_hash(Path(path)) if task.is_local else task.dataset.revision
    return memoised((path, revision, config, split), lambda: _load_part(task, part, config, split))


def _load_part(task: TaskDefinition, part: str, config: str, split: str) -> datasets.Dataset:
    """``load_part`` without the memo."""
    import datasets

    path = task.dataset.path
    try:
        if config.endswith("/") and not _without_card(task):
            return _load_folder(task, part, config, split)
        if _without_card(task):
            folder, files = _config_files(task, part, config)
            files = _split_files(task, part, config, folder, files, split)
            return _load_local_files(files, _text_columns(task), _cache_dir(task))
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


def _load_folder(task: TaskDefinition, part: str, folder: str, split: str) -> datasets.Dataset:
    """A config named as a folder of the dataset (``queries/``): its data files read with
    ``load_dataset(path, data_dir=folder)``, the card's configs ignored, as mteb reads JinaVDR's
    datasets; the split is the one the files are named after."""
    import datasets

    path, revision = task.dataset.path, task.dataset.revision
    data_dir = folder.rstrip("/")
    splits = datasets.get_dataset_split_names(path, revision=revision, data_dir=data_dir)
    if split not in splits:
        raise _missing_split(task, part, folder, split, splits)
    return datasets.load_dataset(
        path, data_dir=data_dir, split=split, revision=revision, cache_dir=_cache_dir(task)
    )


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


def _config_files(task: TaskDefinition, part: str, config: str) -> tuple[Path, list[Path]]:
    """A config's data files in a folder without a dataset card, and the folder they are read
    in: the one file named after it (``corpus.parquet`` for config ``corpus``, or the file the
    config names exactly), else the files of its folder (config ``default``: the files at the
    top). A config both a file and a folder, or a file in two formats, is an error: which one
    is meant is not guessed."""
    root = Path(task.dataset.path)
    named = root / config
    if named.is_file() and named.suffix in DATA_SUFFIXES:
        return named.parent, [named]
    found = [named.with_name(named.name + suffix) for suffix in DATA_SUFFIXES]
    found = [p for p in found if p.is_file()] + ([named] if named.is_dir() else [])
    if len(found) > 1:
        raise _ambiguous(task, part, config, found)
    if found and found[0].is_file():
        return root, found
    folder = root if config == "default" and not found else named
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES)
    if not files:
        raise HarnessError(
            f"task {task.name}: no data files ({', '.join(DATA_SUFFIXES)}) found for config "
            f"{config!r} of part {part!r} in {root}: store it as {config}.parquet (or another "
            f"of those formats) or as a folder {config}/, or name its file under "
            f"dataset.configs.{part}."
        )
    return folder, files


def _ambiguous(task: TaskDefinition, part: str, config: str, found: Sequence[Path]) -> HarnessError:
    """The error for a part with several candidate files or folders, naming them and the fix."""
    root = Path(task.dataset.path)
    names = [str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in found]
    return HarnessError(
        f"task {task.name}: dataset {root} holds {len(found)} candidates for config {config!r} "
        f"(part {part!r}): {', '.join(names)}. Remove all but one, or name the one to read "
        f"under dataset.configs in the task definition, e.g. configs: {{{part}: {names[0]}}}."
    )


def _split_files(
    task: TaskDefinition, part: str, config: str, folder: Path, files: list[Path], split: str
) -> list[Path]:
    """Of a config's files (in ``folder``), those for ``split``: the files named after it, or
    in a folder named after it (``<split>*``, ``<split>/``); all files when none is named after
    a split (one set for every split); an error when the files are named after other splits
    only, or when the chosen files mix formats."""
    named_split = re.compile(f"{re.escape(split)}{_AFTER_SPLIT}")
    names = {p: [*p.relative_to(folder).parent.parts, p.name] for p in files}
    chosen = [p for p in files if any(named_split.match(name) for name in names[p])]
    if not chosen:
        matches = (_split_in_name().match(name) for p in files for name in names[p])
        named = sorted({m.group(1) or m.group(2) for m in matches if m})
        if named:
            raise _missing_split(task, part, config, split, named)
        chosen = files
    if len({p.suffix for p in chosen}) > 1:
        raise _ambiguous(task, part, config, chosen)
    return chosen


def _text_columns(task: TaskDefinition) -> tuple[str, ...]:
    """The identifier columns a delimited file of the task holds as text."""
    return tuple(dict.fromkeys([*TEXT_COLUMNS, *map(partial(column, task), TEXT_COLUMNS)]))


def _load_local_files(
    files: list[Path], text_columns: Sequence[str], cache_dir: str | None
) -> datasets.Dataset:
    """One dataset of local data files of one format (a ``.tsv`` is a tab-separated csv)."""
    import datasets

    suffix = files[0].suffix
    options: dict[str, Any] = {}
    if BUILDERS[suffix] == "csv":
        options["converters"] = dict.fromkeys(text_columns, str)
        options["delimiter"] = "\t" if suffix == ".tsv" else ","
    paths = [str(p) for p in files]
    return datasets.load_dataset(
        BUILDERS[suffix], data_files=paths, split="train", cache_dir=cache_dir, **options
    )


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
    private_hint = (
        " The dataset is private (mteb marks it is_public=False): only accounts its owners "
        "admit can download it. With access, log in (`hf auth login` or HF_TOKEN) and run "
        "again; without it, leave the task out."
        if task.dataset.private and not task.is_local
        else ""
    )
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return HarnessError(
        f"task {task.name}: cannot load {what} of dataset {task.dataset.path} "
        f"(revision {task.dataset.revision or 'unpinned'}): {type(error).__name__}: "
        f"{first_line}.{private_hint}{offline_hint}"
    )
