"""Counters installed in a benchmark child process: decodes and model forward calls.

Both sides of the comparison run the same transformers model, so counting its feature methods
(``get_image_features``/``get_audio_features``/``get_video_features`` and ``get_text_features``)
and the library's decodes (PIL pixel decodes for images, ``soundfile.read`` for clips, PyAV
decoding passes and the frames they decode for video) gives the same measure on each side. The
counters live in shared memory, so decodes in forked DataLoader workers count.
"""

from __future__ import annotations

import inspect
import json
import multiprocessing
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.suites import STACKS

_COUNTERS: dict[str, Any] = {}
DECODE_COUNTERS = ("decoded", "frames")


def install(modality: str) -> None:
    """Wrap the modality's decoder and its model's feature methods with shared counters."""
    import transformers

    stack = STACKS[modality]
    decodes = DECODE_COUNTERS if modality == "video" else DECODE_COUNTERS[:1]
    for name in (*decodes, *stack.forwards):
        _COUNTERS[name] = multiprocessing.Value("q", 0)
    _DECODERS[modality]()
    model_class = getattr(transformers, stack.model_class)
    for method in stack.forwards:
        _wrap(model_class, method, method)


def _count_pil_decodes() -> None:
    from PIL import ImageFile

    original_load = ImageFile.ImageFile.load

    def counted_load(self: Any) -> Any:
        if getattr(self, "tile", None):  # pixels still encoded: this call decodes them
            _bump("decoded")
        return original_load(self)

    ImageFile.ImageFile.load = counted_load  # type: ignore[method-assign]


def _count_soundfile_reads() -> None:
    import soundfile

    _wrap(soundfile, "read", "decoded")


class _CountedContainer:
    """A PyAV container whose ``decode`` counts its frames, and counts as one clip decode once
    it yields a frame."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def __enter__(self) -> _CountedContainer:
        self._container.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._container.__exit__(*exc)

    def decode(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        first = True
        for frame in self._container.decode(*args, **kwargs):
            if first:
                _bump("decoded")
                first = False
            _bump("frames")
            yield frame


def _count_av_decodes() -> None:
    import av

    original_open = av.open

    def counted_open(*args: Any, **kwargs: Any) -> Any:
        return _CountedContainer(original_open(*args, **kwargs))

    av.open = counted_open


_DECODERS = {
    "image": _count_pil_decodes,
    "audio": _count_soundfile_reads,
    "video": _count_av_decodes,
}


def _wrap(owner: Any, name: str, counter: str) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        _bump(counter)
        return original(*args, **kwargs)

    counted.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    counted.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, counted)


def _bump(name: str) -> None:
    counter = _COUNTERS[name]
    with counter.get_lock():
        counter.value += 1


def counts() -> dict[str, Any]:
    """Decodes (video: clip decodes and ``frames``) and forward calls: per feature method and
    in total."""
    forwards = {n: int(c.value) for n, c in _COUNTERS.items() if n not in DECODE_COUNTERS}
    decodes = {n: int(c.value) for n, c in _COUNTERS.items() if n in DECODE_COUNTERS}
    return {**decodes, "forwards": forwards, "forward_calls": sum(forwards.values())}


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_report(path: Path, payload: dict[str, Any]) -> None:
    """Write one side's report as JSON."""
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))
