"""The OCR + text-embedder baseline: Tesseract reads the pages, all-MiniLM-L6-v2 embeds the text."""

from __future__ import annotations

import difflib
import io
import math
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter, ocr
from harness.model_adapters.ocr import (
    DEFAULT_LANGUAGES,
    OcrTextAdapter,
    Tesseract,
    missing_packages,
)
from tests.dataset_fixtures import read_result_json, run_cli
from tests.document_fixtures import SEADOC_PAGES
from tests.document_fixtures import render_page as render_seadoc_page

MODEL = "ocr-tesseract-minilm"
MISSING = missing_packages(DEFAULT_LANGUAGES)
needs_tesseract = pytest.mark.skipif(
    bool(MISSING),
    reason=f"needs the Debian packages {' '.join(MISSING)} (`make test` installs them as root "
    "or with sudo)",
)
PAGES = {
    "Rainfall report": "The northern provinces received more rain this year than in any year "
    "since records began, and the rice farmers planted their fields early.",
    "Chocolate cake": "Mix the flour, butter and sugar, add melted chocolate, then bake the cake "
    "for forty minutes in a hot oven.",
    "Night train": "The night train leaves the central station at ten in the evening and reaches "
    "the harbour before dawn.",
}
QUESTIONS = [
    "Which provinces had record rain, and when did the farmers plant rice?",
    "How long should the chocolate cake bake in the oven?",
    "When does the night train leave the central station?",
]


def render_page(title: str, body: str) -> Image.Image:
    """A page of black English text on white, in Pillow's bundled TrueType font."""
    page = Image.new("RGB", (520, 300), "white")
    draw = ImageDraw.Draw(page)
    draw.text((20, 20), title, font=ImageFont.load_default(size=28), fill="black")
    for line_number, line in enumerate(textwrap.wrap(body, 42)):
        y = 70 + 28 * line_number
        draw.text((20, y), line, font=ImageFont.load_default(size=20), fill="black")
    return page


def words(text: str) -> set[str]:
    """The lower-case words of a text, punctuation dropped."""
    return {word.strip(".,?").lower() for word in text.split()} - {""}


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    """The rendered pages, in the order of ``PAGES``."""
    return [render_page(title, body) for title, body in PAGES.items()]


@pytest.fixture(scope="module")
def adapter() -> OcrTextAdapter:
    """The registered OCR baseline."""
    loaded = load_adapter(MODEL)
    assert isinstance(loaded, OcrTextAdapter)
    return loaded


@needs_tesseract
def test_tesseract_reads_rendered_english_pages_in_order(pages: list[Image.Image]) -> None:
    blank = Image.new("RGB", (300, 200), "white")
    tesseract = Tesseract.find(DEFAULT_LANGUAGES, page_segmentation=3)
    texts = tesseract.read([blank, pages[0], blank, pages[2]], workers=2)
    assert len(texts) == 4
    assert texts[0] == texts[2] == ""
    for text, key in ((texts[1], "Rainfall report"), (texts[3], "Night train")):
        expected = words(f"{key} {PAGES[key]}")
        assert len(expected & words(text)) >= 0.9 * len(expected), text


@needs_tesseract
@pytest.mark.parametrize("language", ["th", "vi", "ms"])
def test_tesseract_reads_southeast_asian_pages_without_spurious_spaces(language: str) -> None:
    page = next(page for page in SEADOC_PAGES if page.language == language)
    tesseract = Tesseract.find(DEFAULT_LANGUAGES, page_segmentation=3)
    [text] = tesseract.read([Image.open(io.BytesIO(render_seadoc_page(page)))], workers=1)
    read = " ".join(text.split())
    assert difflib.SequenceMatcher(None, page.text, read).ratio() >= 0.9, read


@needs_tesseract
def test_adapter_embeds_pages_and_text_queries(
    adapter: OcrTextAdapter, pages: list[Image.Image]
) -> None:
    documents = adapter.encode([{"image": page} for page in pages], role="document")
    queries = adapter.encode([{"text": question} for question in QUESTIONS], role="query")
    assert documents.dtype == queries.dtype == np.float32
    assert documents.shape == queries.shape == (3, adapter.meta.embed_dim)
    assert adapter.meta.modalities == ("image", "text")
    assert (np.argmax(queries @ documents.T, axis=1) == [0, 1, 2]).all()


@needs_tesseract
def test_an_item_with_text_and_image_is_its_text_then_the_page_text(
    adapter: OcrTextAdapter, pages: list[Image.Image]
) -> None:
    [text] = adapter.texts([{"text": "Figure 3.", "image": pages[1]}])
    assert text.startswith("Figure 3.\nChocolate cake\n")
    with pytest.raises(BadInputError, match="item 1 has neither"):
        adapter.texts([{"text": "x"}, {}])


@needs_tesseract
def test_fingerprint_holds_the_ocr_languages_and_version(adapter: OcrTextAdapter) -> None:
    options = adapter.meta.options
    assert options["ocr_languages"] == DEFAULT_LANGUAGES
    version = subprocess.run(["tesseract", "--version"], capture_output=True, check=True)
    assert options["ocr_engine"] == version.stdout.decode().splitlines()[0].strip()
    assert sorted(options["ocr_language_data"]) == sorted(DEFAULT_LANGUAGES.split("+"))
    english = load_adapter(MODEL, options={"languages": "eng"})
    assert english.meta.options["ocr_languages"] == "eng"
    assert english.meta.fingerprint != adapter.meta.fingerprint
    one_worker = load_adapter(MODEL, options={"workers": 1})
    assert one_worker.meta.fingerprint == adapter.meta.fingerprint


def test_a_failing_tesseract_run_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pages: list[Image.Image]
) -> None:
    broken = tmp_path / "tesseract"
    broken.write_text("#!/bin/sh\necho 'Error: cannot open the language data' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(ocr, "BINARY", str(broken))
    tesseract = Tesseract("5.3.0", "eng", 3, {})
    with pytest.raises(HarnessError, match=r"exit status 1.*cannot open the language data"):
        tesseract.read(pages[:2], workers=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"languages": "eng; rm"}, "option languages"),
        ({"languages": ["eng"]}, "option languages"),
        ({"page_segmentation": 2}, "option page_segmentation"),
        ({"page_segmentation": "3"}, "option page_segmentation"),
        ({"workers": 0}, "option workers"),
        pytest.param({"languages": "eng+xyz"}, "missing: tesseract-ocr-xyz", marks=needs_tesseract),
    ],
)
def test_bad_options_and_missing_language_data_are_clear_errors(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(HarnessError, match=message):
        load_adapter(MODEL, options=options)


def test_missing_tesseract_names_the_debian_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessError, match="missing: tesseract-ocr tesseract-ocr-eng") as caught:
        load_adapter(MODEL)
    assert "tesseract-ocr-lao" in str(caught.value) and "apt-get install" in str(caught.value)


@needs_tesseract
def test_baseline_scores_far_above_chance_on_the_demo_documents(tmp_path: Path) -> None:
    assert run_cli(MODEL, "DemoDocRetrieval", tmp_path, "--limit", "12") == 0
    result = read_result_json(tmp_path, "DemoDocRetrieval")
    pages = result["harness"]["encoding"]["parts_decoded"]
    # One relevant page per question: a random ranking puts it at each rank with odds 1/pages.
    chance = sum(1 / math.log2(rank + 1) for rank in range(1, min(10, pages) + 1)) / pages
    [scores] = result["scores"]["test"]
    assert pages >= 12 and chance < 0.4
    assert scores["ndcg_at_10"] >= 0.8 and scores["ndcg_at_10"] >= 2.5 * chance
