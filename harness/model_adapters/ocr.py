"""OCR + text-embedder baseline: Tesseract reads each page, a text encoder embeds the text.

This is the reference point of the ViDoRe paper for document retrieval. An image item is read
by the ``tesseract`` binary (Debian's ``tesseract-ocr`` with the language data packages
``tesseract-ocr-<lang>``); a text item is embedded as it is; an item with both is embedded as
its text followed by the text read from its image. The text encoder is a sentence-transformers
model, used through
:class:`~harness.model_adapters.sentence_transformers.SentenceTransformerAdapter`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.sentence_transformers import OPTIONS as TEXT_OPTIONS
from harness.model_adapters.sentence_transformers import SentenceTransformerAdapter

BINARY = "tesseract"
BINARY_PACKAGE = "tesseract-ocr"
DEFAULT_LANGUAGES = "eng+tha+lao+vie+msa"
DEFAULT_PAGE_SEGMENTATION = 3  # tesseract's --psm 3: automatic page segmentation
# Modes that output text: 0 only detects orientation and 2 is not implemented.
PAGE_SEGMENTATIONS = (1, *range(3, 14))
OCR_OPTIONS = frozenset({"languages", "page_segmentation", "workers"})
# Every option the family takes: Tesseract's, and the text model's.
OPTIONS = OCR_OPTIONS | TEXT_OPTIONS
LANGUAGES = re.compile(r"[A-Za-z][\w/]*(\+[A-Za-z][\w/]*)*")
# Without this, tesseract puts a space between every character of Thai (and Lao) text.
CONFIG = {"preserve_interword_spaces": "1"}
PAGE_TIMEOUT_S = 300
PAGE_SEPARATOR = "\f"  # what tesseract writes between the pages of a list
_TESSDATA_LINE = re.compile(r'List of available languages in "(.*?)"')


def debian_packages(languages: str) -> list[str]:
    """The Debian packages that provide tesseract and the data of ``languages``."""
    return [BINARY_PACKAGE, *(f"tesseract-ocr-{lang}" for lang in languages.split("+"))]


def missing_packages(languages: str = DEFAULT_LANGUAGES) -> list[str]:
    """The Debian packages still needed to OCR ``languages`` (empty when all is in place)."""
    if shutil.which(BINARY) is None:
        return debian_packages(languages)
    _, installed = _installed_languages()
    return [f"tesseract-ocr-{lang}" for lang in languages.split("+") if lang not in installed]


@dataclass(frozen=True)
class Tesseract:
    """The ``tesseract`` binary with the language data that a run needs, checked up front."""

    version: str
    languages: str
    page_segmentation: int
    data_digests: Mapping[str, str]

    @classmethod
    def find(cls, languages: str, page_segmentation: int) -> Tesseract:
        """Check that the binary and the language data exist; raise a HarnessError naming
        the Debian packages to install when they do not."""
        missing = missing_packages(languages)
        if missing:
            raise HarnessError(
                f"the OCR baseline needs tesseract with the language data {languages!r}; "
                f"missing: {' '.join(missing)}. Install them with `apt-get install "
                f"{' '.join(missing)}` (`make demo` and `make test` do so when run as root or "
                "with sudo)."
            )
        tessdata, _ = _installed_languages()
        digests = {
            lang: _file_digest(tessdata / f"{lang}.traineddata") for lang in languages.split("+")
        }
        return cls(_version(), languages, page_segmentation, digests)

    def read(self, pages: Sequence[Image.Image], workers: int) -> list[str]:
        """The text of each page, whitespace at both ends removed.

        The pages are shared out among up to ``workers`` tesseract processes run at once; each
        loads the language data once and reads its share from a list of files.
        """
        if not pages:
            return []
        with tempfile.TemporaryDirectory(prefix="harness-ocr-") as folder:
            # Saved in this thread: PIL images are not safe to share between threads.
            paths = [_save_ppm(page, Path(folder, f"{i}.ppm")) for i, page in enumerate(pages)]
            with ThreadPoolExecutor(max_workers=workers) as pool:
                shares = list(pool.map(self._read_files, _split(paths, workers)))
        return [text for share in shares for text in share]

    def _read_files(self, paths: list[Path]) -> list[str]:
        """Run one tesseract process on a list of page files."""
        listing = paths[0].with_suffix(".txt")
        listing.write_text("".join(f"{path}\n" for path in paths))
        command = [BINARY, str(listing), "stdout", "-l", self.languages]
        command += ["--psm", str(self.page_segmentation)]
        command += [part for name, value in CONFIG.items() for part in ("-c", f"{name}={value}")]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                timeout=PAGE_TIMEOUT_S * len(paths),
                # One thread per process: the adapter runs several processes at once.
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"tesseract took more than {PAGE_TIMEOUT_S} s per page") from None
        texts = done.stdout.decode("utf-8", errors="replace").split(PAGE_SEPARATOR)
        if done.returncode != 0 or len(texts) != len(paths):
            error = done.stderr.decode(errors="replace").strip().splitlines()
            raise HarnessError(
                f"tesseract failed on {len(paths)} page(s) (exit status {done.returncode}, "
                f"{len(texts)} page text(s)): {error[-1] if error else 'no message'}"
            )
        return [text.strip() for text in texts]


class OcrTextAdapter:
    """Embed pages by their Tesseract text, and texts directly, with a sentence-transformers model.

    ``source`` is the text encoder (a sentence-transformers directory or hub id). ``options``:
    ``languages`` (tesseract's ``-l``, default ``"eng+tha+lao+vie+msa"``), ``page_segmentation``
    (tesseract's ``--psm``, default 3) and ``workers`` (tesseract processes run at once,
    default: the CPU count up to 4); any other option goes to the text encoder. The tesseract
    version and a hash of each language's data land in the fingerprint.
    """

    def __init__(self, request: LoadRequest) -> None:
        self._workers = _workers(request.options.get("workers", min(4, os.cpu_count() or 1)))
        self.tesseract = Tesseract.find(
            _languages(request.options.get("languages", DEFAULT_LANGUAGES)),
            _page_segmentation(request.options.get("page_segmentation", DEFAULT_PAGE_SEGMENTATION)),
        )
        text_options = {k: v for k, v in request.options.items() if k not in OCR_OPTIONS}
        self.text_encoder = SentenceTransformerAdapter(replace(request, options=text_options))
        text_meta = self.text_encoder.meta
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="ocr",
            similarity=text_meta.similarity,
            modalities=("image", "text"),
            dtype=request.dtype,
            embed_dim=text_meta.embed_dim,
            n_parameters=text_meta.n_parameters,
            uses_instructions=text_meta.uses_instructions,
            role_aware=text_meta.role_aware,
            options={
                "ocr_engine": f"tesseract {self.tesseract.version}",
                "ocr_languages": self.tesseract.languages,
                "ocr_page_segmentation": self.tesseract.page_segmentation,
                "ocr_config": CONFIG,
                "ocr_language_data": dict(self.tesseract.data_digests),
                "text_encoder": text_meta.fingerprint,
                **text_meta.options,
            },
        )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Read the pages of the batch in parallel, then embed all texts in one call."""
        texts = self.texts(items)
        return self.text_encoder.encode(
            [{"text": text} for text in texts], role=role, instruction=instruction
        )

    def texts(self, items: Sequence[Item]) -> list[str]:
        """The text that stands for each item: its own text, then its page's OCR text."""
        for index, item in enumerate(items):
            if item.get("text") is None and item.get("image") is None:
                raise BadInputError(f"item {index} has neither a text nor an image")
        pages = [item["image"] for item in items if item.get("image") is not None]
        read = iter(self.tesseract.read(pages, self._workers))
        texts = []
        for item in items:
            parts = [item.get("text"), next(read) if item.get("image") is not None else None]
            texts.append("\n".join(part for part in parts if part is not None))
        return texts


def _save_ppm(image: Image.Image, path: Path) -> Path:
    """Save an image as an uncompressed PPM file, which tesseract reads without decoding work."""
    image.convert("RGB").save(path, format="PPM")
    return path


def _split(paths: list[Path], parts: int) -> list[list[Path]]:
    """``paths`` cut into at most ``parts`` runs of nearly equal length, in order."""
    size, extra = divmod(len(paths), parts)
    runs, start = [], 0
    for part in range(parts):
        end = start + size + (part < extra)
        runs.append(paths[start:end])
        start = end
    return [run for run in runs if run]


def _installed_languages() -> tuple[Path, set[str]]:
    """Tesseract's language data folder and the languages found in it."""
    output = _run_binary("--list-langs")
    lines = output.splitlines()
    match = _TESSDATA_LINE.search(lines[0]) if lines else None
    return Path(match.group(1) if match else "."), {line.strip() for line in lines[1:]}


def _version() -> str:
    """The tesseract version, for example ``5.3.0``."""
    first = _run_binary("--version").splitlines()[0]
    return first.split()[-1]


def _run_binary(flag: str) -> str:
    """The standard output (or, failing that, error output) of ``tesseract <flag>``."""
    done = subprocess.run([BINARY, flag], capture_output=True, check=False, timeout=60)
    return (done.stdout or done.stderr).decode(errors="replace")


def _file_digest(path: Path) -> str:
    """A short sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _languages(value: Any) -> str:
    """Check tesseract's ``-l`` value: language names joined by ``+``."""
    if not isinstance(value, str) or not LANGUAGES.fullmatch(value):
        raise HarnessError(
            f"option languages must be tesseract language names joined by '+', "
            f"such as {DEFAULT_LANGUAGES!r}; got {value!r}"
        )
    return value


def _page_segmentation(value: Any) -> int:
    """Check tesseract's ``--psm`` value."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in PAGE_SEGMENTATIONS:
        raise HarnessError(
            f"option page_segmentation must be one of tesseract's text modes "
            f"{PAGE_SEGMENTATIONS}, got {value!r}"
        )
    return value


def _workers(value: Any) -> int:
    """Check the number of tesseract processes run at once."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HarnessError(f"option workers must be a positive integer, got {value!r}")
    return value
