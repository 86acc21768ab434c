"""``harness cache info|prune``: what the embedding cache holds, and reclaiming its space."""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.app.table import format_table
from harness.core.errors import HarnessError
from harness.engine.cache import OLD_FOLDER, STORE_FOLDER, count_old_entries, default_cache_dir
from harness.engine.shard_store import ShardStore, StoreInfo

_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?))?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``500M``, ``1.5 GB`` (powers of 1000) or ``2GiB`` (powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size like 500M, 20GB or 1.5GiB, got {text!r}")
    number, unit, binary = match.groups()
    exponent = "kmgt".index(unit.lower()) + 1 if unit else 0
    return int(float(number) * (1024 if binary else 1000) ** exponent)


def _days(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more days, got {text}")
    return value


def add_cache_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``cache`` subcommand and its ``info`` and ``prune`` actions."""
    cache = commands.add_parser("cache", help="show the embedding cache's size, or prune it")
    actions = cache.add_subparsers(dest="cache_action", required=True)
    info = actions.add_parser("info", help="entries, sizes and model fingerprints of the cache")
    prune = actions.add_parser(
        "prune",
        help="drop entries (by age, fingerprint, size or all) and reclaim their disk space",
        description="Drop the selected entries (each selector adds entries), then rewrite the "
        "shards that hold dead bytes. With no selector, only reclaims dead bytes (left by "
        "replaced entries or a killed run). Shards a running harness is writing are left as "
        "they are, and reported.",
    )
    for action in (info, prune):
        action.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help="the cache folder (default $HARNESS_CACHE or ~/.cache/harness)",
        )
    prune.add_argument("--older-than", type=_days, metavar="DAYS", help="written before then")
    prune.add_argument(
        "--fingerprint", action="append", default=[], help="of this model fingerprint (repeatable)"
    )
    prune.add_argument(
        "--max-size",
        type=parse_size,
        metavar="SIZE",
        help="the oldest entries beyond this many bytes of vectors (500M, 20GB, 1.5GiB)",
    )
    prune.add_argument(
        "--old-format", action="store_true", help="every entry of the one-file-per-key cache"
    )
    prune.add_argument("--all", action="store_true", help="every entry")


def cmd_cache(args: argparse.Namespace) -> int:
    """Print the cache's report, or prune it and print what was reclaimed."""
    root: Path = args.cache_dir or default_cache_dir()
    if not (root / STORE_FOLDER).is_dir() and not (root / OLD_FOLDER).is_dir():
        raise HarnessError(
            f"no embedding cache at {root}: pass the folder given to `harness run --cache-dir`, "
            "or set $HARNESS_CACHE"
        )
    store = _open_store(root)
    try:
        if args.cache_action == "info":
            print(_report(root, StoreInfo() if store is None else store.info()))
        else:
            _prune(root, store, args)
    finally:
        if store is not None:
            store.close()
    return 0


def _open_store(root: Path) -> ShardStore | None:
    try:
        return ShardStore(root / STORE_FOLDER, create=False)
    except FileNotFoundError:
        return None
    except (OSError, sqlite3.Error) as error:
        raise HarnessError(
            f"cannot open the embedding cache index in {root / STORE_FOLDER} ({error}); check "
            "the folder's permissions"
        ) from None


def _report(root: Path, info: StoreInfo) -> str:
    old_entries, old_bytes = count_old_entries(root / OLD_FOLDER)
    rows = [
        ("entries", f"{info.entries:,}"),
        ("  vectors", f"{info.vectors:,}"),
        ("  multi-vector items", f"{info.multi_vector_items:,}"),
        ("vector bytes", format_size(info.payload_bytes)),
        ("shard files", f"{info.shard_files:,} ({format_size(info.shard_bytes)})"),
        ("reclaimable by prune", format_size(info.reclaimable_bytes)),
        ("index", format_size(info.index_bytes)),
        ("on disk", format_size(info.shard_bytes + info.index_bytes + old_bytes)),
        ("writers active", f"{info.writers_active}"),
        ("written", f"{_date(info.oldest)} .. {_date(info.newest)}"),
        ("old-format entries", f"{old_entries:,} ({format_size(old_bytes)})"),
    ]
    lines = [f"Embedding cache at {root}", *(f"  {name:<22}{value}" for name, value in rows)]
    if info.fingerprints:
        counts = sorted(info.fingerprints.items(), key=lambda item: (-item[1], item[0]))
        lines += ["", format_table(("fingerprint", "entries"), counts)]
    return "\n".join(lines)


def _prune(root: Path, store: ShardStore | None, args: argparse.Namespace) -> None:
    dropped = reclaimed = skipped = 0
    if store is not None:
        cutoff = None if args.older_than is None else time.time() - args.older_than * 86400
        dropped += store.delete(
            everything=args.all,
            created_before=None if cutoff is None else int(cutoff),
            max_payload_bytes=args.max_size,
        )
        for fingerprint in args.fingerprint:
            dropped += store.delete(fingerprint=fingerprint)
        reclaimed, skipped = store.compact()
    old = root / OLD_FOLDER
    if (args.all or args.old_format) and old.is_dir():
        entries, size = count_old_entries(old)
        shutil.rmtree(old)
        dropped += entries
        reclaimed += size
    print(f"Dropped {dropped:,} entries; reclaimed {format_size(reclaimed)} in {root}.")
    if skipped:
        print(
            f"{skipped} shard file(s) in use by a running harness were not compacted; prune "
            "again once it has finished."
        )


def format_size(size: int) -> str:
    """``size`` bytes in the largest binary unit that keeps a number of at least 1."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _date(stamp: int | None) -> str:
    return "-" if stamp is None else datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
