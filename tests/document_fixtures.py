"""Mini document-retrieval datasets in the exact hub layouts of SeaDoc and ViDoRe, with pages
rendered in real fonts (Debian's fonts-thai-tlwg, fonts-lao and fonts-noto-core)."""

from __future__ import annotations

import io
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from PIL import Image, ImageDraw, ImageFont

# Language -> (font family, Debian package, fontconfig language).
FONTS = {
    "th": ("Garuda", "fonts-thai-tlwg", "th"),
    "lo": ("Phetsarath OT", "fonts-lao", "lo"),
    "vi": ("Noto Sans", "fonts-noto-core", "vi"),
    "ms": ("Noto Sans", "fonts-noto-core", "ms"),
    "en": ("Noto Sans", "fonts-noto-core", "en"),
}
PAGE_SIZE = (360, 160)
FONT_SIZE = 20


@dataclass(frozen=True)
class Page:
    """One page: its language, its text, and the English question it answers."""

    language: str
    text: str
    question: str


SEADOC_PAGES = (
    Page("th", "ตลาดน้ำเปิดทุกวันเสาร์ตอนเช้า", "When does the floating market open?"),
    Page("th", "รถไฟไปเชียงใหม่ออกเวลาแปดโมง", "What time does the train to Chiang Mai leave?"),
    Page("lo", "ຫໍສະໝຸດເປີດທຸກວັນຈັນ", "On which day does the library in Laos open?"),
    Page("lo", "ແມ່ນ້ຳຂອງໄຫຼຜ່ານວຽງຈັນ", "Which river flows through Vientiane?"),
    Page("vi", "Chợ hoa mở cửa vào sáng Chủ nhật.", "When does the flower market open?"),
    Page("vi", "Tàu đi Huế khởi hành lúc chín giờ.", "When does the train to Hue depart?"),
    Page("ms", "Perpustakaan dibuka setiap hari Jumaat.", "Which day is the Malay library open?"),
    Page("ms", "Bas ke Melaka bertolak pada pukul tujuh.", "When does the bus to Malacca leave?"),
)
VIDORE_PAGES = (
    Page("en", "Quarterly revenue rose to 4.2 million dollars.", "What was the quarterly revenue?"),
    Page("en", "The warehouse stores 1,200 pallets of grain.", "How many pallets can be stored?"),
    Page("en", "Solar panels supply 38 percent of the power.", "How much power comes from solar?"),
    Page("en", "The clinic opens at 7 am on weekdays.", "When does the clinic open?"),
    Page("en", "Table 3 lists the tax rates for 2021.", "Where are the 2021 tax rates?"),
    Page("en", "Rainfall in March reached 112 millimetres.", "How much rain fell in March?"),
)

SEADOC_CORPUS = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "image": datasets.Image(),
    }
)
SEADOC_QUERY = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "text": datasets.Value("string"),
    }
)
QRELS = datasets.Features(
    {
        "query-id": datasets.Value("string"),
        "corpus-id": datasets.Value("string"),
        "score": datasets.Value("int64"),
    }
)
VIDORE_QUERIES = datasets.Features(
    {"query-id": datasets.Value("int64"), "query": datasets.Value("string")}
)
VIDORE_CORPUS = datasets.Features({"corpus-id": datasets.Value("int64"), "image": datasets.Image()})
VIDORE_QRELS = datasets.Features(
    {
        "query-id": datasets.Value("int64"),
        "corpus-id": datasets.Value("int64"),
        "score": datasets.Value("int64"),
    }
)

Parts = dict[str, tuple[str, list[dict[str, Any]], datasets.Features]]


def font_file(language: str) -> Path:
    """The installed font file for ``language``, found with fc-list; fails naming the package."""
    family, package, fc_language = FONTS[language]
    listing = subprocess.run(
        ["fc-list", f"{family}:lang={fc_language}:style=Regular", "file"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    files = sorted(line.split(":")[0] for line in listing.splitlines() if line.strip())
    if not files:
        raise RuntimeError(
            f"no {family!r} font for language {language!r} found by fc-list: install the Debian "
            f"package {package} (apt-get install {package})"
        )
    return Path(files[0])


def render_page(page: Page) -> bytes:
    """The page's text, black on white, in its language's font, as PNG bytes."""
    font = ImageFont.truetype(str(font_file(page.language)), FONT_SIZE)
    image = Image.new("RGB", PAGE_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    wrap = 30 if page.language in ("vi", "ms", "en") else 60
    for k, line in enumerate(textwrap.wrap(page.text, wrap)):
        draw.text((12, 16 + k * int(FONT_SIZE * 1.8)), line, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_mini_seadoc(root: Path, *, language_column: bool = False) -> Path:
    """SeaDoc's hub layout: ``corpus`` (split ``corpus``), ``query`` and ``qrels`` (split ``test``).

    Page ids are ``doc-<language>-<k>`` (this fixture's own convention). ``language_column``
    adds a ``language`` column to the corpus, as a local copy that knows page languages would.
    """
    corpus, queries, qrels = [], [], []
    for k, page in enumerate(SEADOC_PAGES):
        doc_id, query_id = f"doc-{page.language}-{k}", f"q{k}"
        row = {"id": doc_id, "modality": "image", "image": {"bytes": render_page(page)}}
        corpus.append({**row, "language": page.language} if language_column else row)
        queries.append({"id": query_id, "modality": "text", "text": page.question})
        qrels.append({"query-id": query_id, "corpus-id": doc_id, "score": 1})
    corpus_features = SEADOC_CORPUS.copy()
    if language_column:
        corpus_features["language"] = datasets.Value("string")
    parts: Parts = {
        "corpus": ("corpus", corpus, corpus_features),
        "query": ("test", queries, SEADOC_QUERY),
        "qrels": ("test", qrels, QRELS),
    }
    return write_configs(root, parts)


def write_mini_vidore(root: Path) -> Path:
    """ViDoRe v1's hub layout: ``queries`` (query-id, query), ``corpus`` (corpus-id, image) and
    ``qrels``, all in split ``test``, with integer ids as on the hub."""
    queries = [{"query-id": k, "query": page.question} for k, page in enumerate(VIDORE_PAGES)]
    corpus = [
        {"corpus-id": 100 + k, "image": {"bytes": render_page(p)}}
        for k, p in enumerate(VIDORE_PAGES)
    ]
    qrels = [{"query-id": k, "corpus-id": 100 + k, "score": 1} for k in range(len(VIDORE_PAGES))]
    parts: Parts = {
        "queries": ("test", queries, VIDORE_QUERIES),
        "corpus": ("test", corpus, VIDORE_CORPUS),
        "qrels": ("test", qrels, VIDORE_QRELS),
    }
    return write_configs(root, parts)


def write_configs(root: Path, parts: Parts) -> Path:
    """Write each config's split(s) as ``<config>/<split>-00000-of-00001.parquet``, with a card.

    A config given several splits (``"dev,test"``) holds the same rows in each.
    """
    card = ["---", "configs:"]
    for config, (splits, rows, features) in parts.items():
        (root / config).mkdir(parents=True, exist_ok=True)
        card += [f"- config_name: {config}", "  data_files:"]
        for split in splits.split(","):
            path = f"{config}/{split}-00000-of-00001.parquet"
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(root / path))
            card += [f"  - split: {split}", f"    path: {path}"]
    (root / "README.md").write_text("\n".join([*card, "---", ""]), encoding="utf-8")
    return root
