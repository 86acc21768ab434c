"""Counters installed in a benchmark child process: image decodes and model forward calls.

Both sides of the comparison run the same transformers CLIP, so counting
``get_image_features``/``get_text_features`` calls and PIL decodes gives the same measure on
each side. The counters live in shared memory, so decodes in forked DataLoader workers count.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
from pathlib import Path
from typing import Any

_COUNTERS: dict[str, Any] = {}


def install() -> None:
    """Wrap PIL's decoder and CLIP's two feature methods with shared counters."""
    from PIL import ImageFile
    from transformers import CLIPModel

    for name in ("images_decoded", "image_forwards", "text_forwards"):
        _COUNTERS[name] = multiprocessing.Value("q", 0)
    original_load = ImageFile.ImageFile.load

    def counted_load(self: Any) -> Any:
        if getattr(self, "tile", None):  # pixels still encoded: this call decodes them
            _bump("images_decoded")
        return original_load(self)

    ImageFile.ImageFile.load = counted_load  # type: ignore[method-assign]
    for method, counter in (
        ("get_image_features", "image_forwards"),
        ("get_text_features", "text_forwards"),
    ):
        _wrap_method(CLIPModel, method, counter)


def _wrap_method(cls: type, method: str, counter: str) -> None:
    original = getattr(cls, method)

    def counted(*args: Any, **kwargs: Any) -> Any:
        _bump(counter)
        return original(*args, **kwargs)

    counted.__signature__ = __import__("inspect").signature(original)  # type: ignore[attr-defined]
    counted.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(cls, method, counted)


def _bump(name: str) -> None:
    counter = _COUNTERS[name]
    with counter.get_lock():
        counter.value += 1


def counts() -> dict[str, int]:
    """The counts so far, plus forward calls in total."""
    values = {name: int(counter.value) for name, counter in _COUNTERS.items()}
    values["forward_calls"] = values.get("image_forwards", 0) + values.get("text_forwards", 0)
    return values


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_report(path: Path, payload: dict[str, Any]) -> None:
    """Write one side's report as JSON."""
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))
