"""Write the demo document-retrieval dataset, in the hub layout of SeaDoc.

``DemoDocRetrieval`` (t2i): English questions retrieve rendered pages. Each page is a short fact
sheet about an invented town (its kind, coast or river, founding year, population, craft,
festival and landmark), rendered black on white at ``PAGE_WIDTH`` pixels with the TrueType font
bundled in Pillow (Aileron), so the text is clean enough for OCR. Every page has two questions:
one names the town ("In which year was Velmora founded?"), the other only describes it by a
combination of facts that no other page shares ("Which river town makes copper bells and holds
a lantern parade?"). Each question has exactly one relevant page.

Layout as ``LCO-Embedding/SeaDoc``: configs ``corpus`` (split ``corpus``: ``id``, ``modality``,
``image``), ``query`` (split ``test``: ``id``, ``modality``, ``text``) and ``qrels`` (split
``test``: ``query-id``, ``corpus-id``, ``score``).

Seeds (``DATA_SEED`` 1729, task index 11): facts ``(1729, 11, 1)``, corpus order
``(1729, 11, 2)``. Pillow's bundled font keeps the pixels independent of system fonts.

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is ``harness/tasks/demo/data``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harness.tasks.demo.build import DATA_SEED, QREL_FEATURES, png_bytes

TASK_INDEX = 11
TASK_NAME = "DemoDocRetrieval"
N_PAGES = 60
PAGE_WIDTH = 480
MARGIN = 20
TITLE_SIZE = 26
BODY_SIZE = 19
LINE_SPACING = 1.35
WRAP_CHARACTERS = 44

SYLLABLES = (
    "bar", "vel", "mor", "tan", "sil", "kor", "den", "lum", "rav", "ost",
    "pel", "quin", "dar", "fen", "gal", "hol", "nir", "zor", "bel", "cas",
)  # fmt: skip
KINDS = ("harbour town", "mountain village", "river town", "island port", "valley town")
WATERS = (
    "the Amber Sea", "the Grey Bay", "the Linden River", "the Crane River", "Lake Sorrel",
    "the Salt Marsh",
)  # fmt: skip
CRAFTS = (
    "glass lanterns", "copper bells", "blue wool", "paper kites", "clay pipes", "silver thread",
    "honey cakes", "oak barrels", "painted tiles", "rope ladders", "smoked trout", "felt hats",
)  # fmt: skip
FESTIVALS = (
    "a lantern parade in winter", "a kite festival in spring", "a boat race in summer",
    "a harvest fair in autumn", "a music week in midsummer", "a candle night in December",
)  # fmt: skip
LANDMARKS = (
    "a green iron bridge", "a clock tower with four faces", "a red lighthouse",
    "a stone windmill", "an old salt warehouse", "a round market hall", "a tall brick chimney",
    "a wooden watchtower",
)  # fmt: skip

CORPUS_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "image": datasets.Image(),
    }
)
QUERY_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "text": datasets.Value("string"),
    }
)

Row = dict[str, object]
Parts = dict[str, tuple[str, list[Row], datasets.Features]]


@dataclass(frozen=True)
class Town:
    """The facts of one page."""

    name: str
    kind: str
    water: str
    founded: int
    population: int
    craft: str
    festival: str
    landmark: str

    def page_text(self) -> list[str]:
        """The body paragraphs of the town's page."""
        return [
            f"{self.name} is a {self.kind} on {self.water}. It was founded in {self.founded} "
            f"and has about {self.population:,} inhabitants.",
            f"The town is known for its {self.craft}, and every year it holds {self.festival}.",
            f"Visitors remember {self.name} for {self.landmark} near the main square.",
        ]

    def questions(self) -> tuple[str, str]:
        """A question that names the town, and one that only describes it."""
        return (
            f"In which year was {self.name} founded, and how many people live there?",
            f"Which {self.kind} makes {self.craft} and holds {self.festival}?",
        )


def build_documents(out_dir: Path) -> None:
    """Write the demo document-retrieval task under ``out_dir``."""
    towns = sample_towns(N_PAGES, (DATA_SEED, TASK_INDEX, 1))
    order = np.random.default_rng((DATA_SEED, TASK_INDEX, 2)).permutation(len(towns))
    page_of = {int(k): f"page{position:03d}" for position, k in enumerate(order)}
    corpus: list[Row] = [
        {
            "id": page_of[int(k)],
            "modality": "image",
            "image": {"bytes": png_bytes(render_page(towns[int(k)]))},
        }
        for k in order
    ]
    queries: list[Row] = []
    qrels: list[Row] = []
    for k, town in enumerate(towns):
        for j, question in enumerate(town.questions()):
            query_id = f"q{k:03d}-{j}"
            queries.append({"id": query_id, "modality": "text", "text": question})
            qrels.append({"query-id": query_id, "corpus-id": page_of[k], "score": 1})
    parts: Parts = {
        "corpus": ("corpus", corpus, CORPUS_FEATURES),
        "query": ("test", queries, QUERY_FEATURES),
        "qrels": ("test", qrels, QREL_FEATURES),
    }
    write_split_configs(out_dir / TASK_NAME, parts, _card(len(corpus), len(queries)))


def sample_towns(n: int, seed: tuple[int, ...]) -> list[Town]:
    """``n`` towns with distinct names and distinct (kind, craft, festival) combinations."""
    rng = np.random.default_rng(seed)
    combos = [(k, c, f) for k in KINDS for c in CRAFTS for f in FESTIVALS]
    picked = rng.choice(len(combos), size=n, replace=False)
    names = _names(n, rng)
    return [
        Town(
            name=names[i],
            kind=combos[int(p)][0],
            water=WATERS[int(rng.integers(len(WATERS)))],
            founded=int(rng.integers(1150, 1900)),
            population=int(rng.integers(8, 900)) * 100,
            craft=combos[int(p)][1],
            festival=combos[int(p)][2],
            landmark=LANDMARKS[int(rng.integers(len(LANDMARKS)))],
        )
        for i, p in enumerate(picked)
    ]


def _names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct invented names of two or three syllables."""
    names: list[str] = []
    while len(names) < n:
        size = int(rng.integers(2, 4))
        name = "".join(SYLLABLES[int(i)] for i in rng.integers(len(SYLLABLES), size=size))
        if name.capitalize() not in names:
            names.append(name.capitalize())
    return names


def render_page(town: Town) -> Image.Image:
    """The town's fact sheet: a title and wrapped paragraphs, black on white, 4 grey levels."""
    title_font = ImageFont.load_default(size=TITLE_SIZE)
    body_font = ImageFont.load_default(size=BODY_SIZE)
    lines = [(f"The {town.kind} of {town.name}", title_font)]
    for paragraph in town.page_text():
        lines.append(("", body_font))
        lines.extend((line, body_font) for line in textwrap.wrap(paragraph, WRAP_CHARACTERS))
    line_height = int(BODY_SIZE * LINE_SPACING)
    height = 2 * MARGIN + TITLE_SIZE + line_height * (len(lines) - 1)
    page = Image.new("L", (PAGE_WIDTH, height), 255)
    draw = ImageDraw.Draw(page)
    y = MARGIN
    for text, font in lines:
        draw.text((MARGIN, y), text, fill=0, font=font)
        y += TITLE_SIZE + 4 if font is title_font else line_height
    return page.point(lambda value: value // 64 * 85)  # 4 grey levels: small PNGs


def write_split_configs(folder: Path, parts: Parts, description: str) -> None:
    """Write each config's one split as ``<config>/<split>-00000-of-00001.parquet``, with a card."""
    configs = ""
    for config, (split, rows, features) in parts.items():
        (folder / config).mkdir(parents=True, exist_ok=True)
        path = f"{config}/{split}-00000-of-00001.parquet"
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / path))
        configs += f"- config_name: {config}\n  data_files:\n  - split: {split}\n    path: {path}\n"
    card = f"---\nlicense: apache-2.0\npretty_name: {folder.name}\nconfigs:\n{configs}---\n\n"
    (folder / "README.md").write_text(f"{card}# {folder.name}\n\n{description}\n", encoding="utf-8")


def _card(n_pages: int, n_queries: int) -> str:
    return (
        f"Demo document retrieval in the layout of LCO-Embedding/SeaDoc: {n_queries} English "
        f"questions retrieve {n_pages} rendered English fact-sheet pages ({PAGE_WIDTH} px wide, "
        "4-level greyscale PNG, Pillow's bundled Aileron font); one relevant page per question. "
        f"Generated by `harness/tasks/demo/documents.py` (data seed {DATA_SEED}, task index "
        f"{TASK_INDEX}). Corpus split `corpus`, queries and qrels split `test`."
    )
