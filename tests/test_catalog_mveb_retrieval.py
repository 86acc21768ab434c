"""MVEB's retrieval and video QA entries, read and scored as mteb reads and scores them.

Each distinct layout (``tests.catalog_layouts``) is written as a tiny local dataset in the
layout of the real one (clips of 4 frames, 16x16, in ``datasets.Video`` columns; WAV tones in
``datasets.Audio`` columns), scored end to end by ``harness run`` with a toy model, and read by
mteb's own loaders (clips undecoded: mteb's decoder, torchcodec, is not installed here) to
check that both read the same items and judgments. The video QA scorer is checked against
mteb's evaluator on identical embeddings.
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile

import harness.app.runner
from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.audio import resample
from harness.core.video import FrameSampling, Video, encode_video
from harness.engine.encoding import BatchEncoder
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column
from harness.tasks.multiple_choice import MultipleChoice
from harness.tasks.registry import task_type
from tests.catalog_layouts import catalog_tasks, layout_params, score_on_fixture
from tests.test_catalog_maeb import write_configs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb
    from mteb.similarity_functions import cos_sim, pairwise_cos_sim

CATALOG = catalog_tasks("retrieval", "multiple_choice", video=True)
MTEB_TYPES = {"Any2AnyRetrieval": "retrieval", "VideoCentricQA": "multiple_choice"}
MVEB = ("MVEB(v1)", "MVEB(text, video, v1)")
ROWS = 4  # rows per fixture: row n's clip, sound and caption all say "n"
RATE = 16_000
SAMPLING = FrameSampling(num_frames=2)
TOY_MODEL = "toy-mveb-retrieval"


def test_catalog_defines_every_mveb_retrieval_and_qa_task() -> None:
    """Every retrieval and video QA task of the MVEB benchmarks is an entry of its type."""
    expected = {
        task.metadata.name: MTEB_TYPES[task.metadata.type]
        for benchmark in MVEB
        for task in mteb.get_benchmark(benchmark).tasks
        if task.metadata.type in MTEB_TYPES
    }
    assert len(expected) == 19
    assert {task.name: task.type for task in CATALOG} == expected


@pytest.mark.parametrize("task", CATALOG, ids=lambda task: task.name)
def test_constants_and_prompts_match_mteb(task: TaskDefinition) -> None:
    reference: Any = mteb.get_task(task.name)
    protocol: Any = task_type(task).protocol(task)
    assert protocol.k_values == tuple(reference.k_values)
    assert protocol.skip_first_result == reference.skip_first_result
    assert protocol.ignore_identical_ids == reference.ignore_identical_ids
    prompts = reference.metadata.prompt or {}
    assert (task.prompts.query, task.prompts.document) == (
        prompts.get("query"),
        prompts.get("document"),
    )


# --- fixtures: the layouts, with generated clips ----------------------------------------------


@cache
def clip(n: int) -> bytes:
    """A 4-frame 16x16 MP4 whose red level tells ``n``."""
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    frames[..., 0] = 50 * n + 25
    frames[..., 1] = 10 * np.arange(4)[:, None, None]  # frames differ
    return encode_video(frames, fps=4.0)


@cache
def tone(n: int) -> bytes:
    """A quarter-second WAV tone whose pitch tells ``n``."""
    t = np.arange(RATE // 4) / RATE
    buffer = io.BytesIO()
    samples = 0.5 * np.sin(2 * np.pi * (200.0 + 100.0 * n) * t).astype(np.float32)
    soundfile.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def cell(modality: str, n: int) -> Any:
    if modality == "video":
        return {"bytes": clip(n), "path": None}
    if modality == "audio":
        return {"bytes": tone(n), "path": None}
    return f" clip number {n} "  # mteb strips a document's text, not a query's


FEATURES = {
    "text": datasets.Value("string"),
    "audio": datasets.Audio(),
    "video": datasets.Video(),
}


def write_retrieval_fixture(task: TaskDefinition, root: Path) -> Path:
    """One table (``paired``): row n's clip, its sound track and its caption, in the entry's
    columns, with a column mteb's loader does not read."""
    columns: dict[str, list[Any]] = {
        column(task, modality): [cell(modality, n) for n in range(ROWS)]
        for modality in task.sides.inputs
    }
    columns["source"] = [f"youtube-{n}" for n in range(ROWS)]
    features = datasets.Features(
        {
            **{column(task, m): FEATURES[m] for m in task.sides.inputs},
            "source": datasets.Value("string"),
        }
    )
    return write_configs(root, {"default": {"test": columns}}, features)


def write_multiple_choice_fixture(task: TaskDefinition, root: Path) -> Path:
    """One table (``answer_text``): a clip, a question, candidate texts and the answer's text;
    row 1 lists its answer twice (mteb judges the last), row 3's answer is not a candidate
    (mteb drops the question)."""
    candidates = [[f"clip number {k} " for k in range(ROWS)] for _ in range(ROWS)]
    candidates[1].append("clip number 1 ")
    answers = [f"clip number {n} " for n in range(ROWS - 1)] + ["none of these"]
    questions = [f"what is in clip number {n}?" for n in range(ROWS)]
    return write_qa_table(task, root, list(range(ROWS)), questions, candidates, answers)


def write_qa_table(
    task: TaskDefinition,
    root: Path,
    clips: list[int],
    questions: list[str],
    candidates: list[list[str]],
    answers: list[str],
) -> Path:
    """The video QA table in the entry's columns: a row per question, its clip (``clip(n)``)."""
    names = {name: column(task, name) for name in ("video", "question", "choices", "answer")}
    columns: dict[str, list[Any]] = {
        names["video"]: [cell("video", n) for n in clips],
        names["question"]: questions,
        names["choices"]: candidates,
        names["answer"]: answers,
    }
    features = datasets.Features(
        {
            names["video"]: datasets.Video(),
            names["question"]: datasets.Value("string"),
            names["choices"]: datasets.List(datasets.Value("string")),
            names["answer"]: datasets.Value("string"),
        }
    )
    return write_configs(root, {"default": {"test": columns}}, features)


WRITERS = {"retrieval": write_retrieval_fixture, "multiple_choice": write_multiple_choice_fixture}


# --- a toy model that reads the number each part shows ------------------------------------------


def shown_number(modality: str, value: Any) -> int:
    """The number a part shows: a caption's first number, a clip's red level, a tone's pitch."""
    if isinstance(value, int):
        return value  # preprocessed
    if modality == "text":
        match = re.search(r"\d+", value)
        return int(match.group()) if match else 9
    if modality == "video":
        assert isinstance(value, Video)
        return round((float(value.frames(SAMPLING)[..., 0].mean()) - 25) / 50)
    samples = resample(value, RATE).samples
    pitch = np.argmax(np.abs(np.fft.rfft(samples))) * RATE / len(samples)
    return round((pitch - 200.0) / 100.0)


class ToyNumberAdapter:
    """Embeds an item as the one-hot vector of the number its parts show (all parts of a row
    show the same one), so that a correctly read layout retrieves perfectly. Frames are
    sampled and read in ``preprocess`` (the DataLoader workers)."""

    meta = AdapterMeta(
        TOY_MODEL,
        "v1",
        "test",
        "cosine",
        ("text", "audio", "video"),
        "float32",
        options={"sampling_rate": RATE, **SAMPLING.options()},
    )

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        return {modality: shown_number(modality, value) for modality, value in item.items()}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        vectors = np.zeros((len(items), 10), dtype=np.float32)
        for row, item in enumerate(items):
            for number in self.preprocess(item).values():
                vectors[row, number] += 1.0
        return vectors


@pytest.fixture
def toy_model(monkeypatch: pytest.MonkeyPatch) -> str:
    """``harness run --model toy-mveb-retrieval`` loads a :class:`ToyNumberAdapter`."""
    real = harness.app.runner.load_adapter

    def load(model: str, **kwargs: Any) -> Any:
        return ToyNumberAdapter() if model == TOY_MODEL else real(model, **kwargs)

    monkeypatch.setattr(harness.app.runner, "load_adapter", load)
    return TOY_MODEL


@pytest.mark.parametrize("task", layout_params(CATALOG))
def test_layout_scores(task: TaskDefinition, toy_model: str, tmp_path: Path) -> None:
    """Every row's query finds its own row's document first: the sides are read from the
    right columns and paired row by row (a question, from its own candidates)."""
    result = score_on_fixture(task, WRITERS[task.type], Path(toy_model), tmp_path)
    [scores] = result["scores"]["test"]
    assert scores["main_score"] == scores[task_type(task).main_score(task)] == 1.0
    assert scores["hf_subset"] == "default"


# --- the rows as mteb's loaders read them -----------------------------------------------------


@pytest.fixture
def mteb_reads_undecoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """mteb's loaders read clips and sounds undecoded (its ``load_dataset`` reference is
    patched in each task module)."""
    real = datasets.load_dataset

    def load_dataset(*args: Any, **kwargs: Any) -> datasets.Dataset:
        data = real(*args, **kwargs)
        for name, feature in data.features.items():
            if isinstance(feature, datasets.Video | datasets.Audio):
                data = data.cast_column(name, type(feature)(decode=False))
        return data

    for task in CATALOG:
        monkeypatch.setattr(
            sys.modules[type(mteb.get_task(task.name)).__module__], "load_dataset", load_dataset
        )
    yield


def mteb_loaded(name: str, fixture: Path) -> Any:
    """mteb's task ``name`` with its data loaded from ``fixture``."""
    reference = copy.deepcopy(mteb.get_task(name))
    local = {"path": str(fixture), "revision": None}
    reference.metadata = reference.metadata.model_copy(update={"dataset": local})
    reference.load_data()
    return reference


def stored_cell(modality: str, part: Any) -> Any:
    """A part as mteb's dataset holds it: the text, or the clip's or sound's bytes."""
    return part if modality == "text" else part.data


def mteb_cell(modality: str, value: Any) -> Any:
    return value if modality == "text" else value["bytes"]


def our_ids(task: TaskDefinition) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """mteb's query id and document id -> ours: retrieval rows ``i`` are ``query-test-i`` and
    ``corpus-test-i``; question ``q<i>`` is ``query-test-<i>``, its candidate ``q<i>_c<j>``
    ``query-test-<i>-c<j>``."""
    if task.type == "retrieval":
        return "query-test-{}".format, "corpus-test-{}".format

    def query_id(qid: str) -> str:
        return f"query-test-{qid.removeprefix('q')}"

    def doc_id(did: str) -> str:
        qid, _, candidate = did.partition("_")
        return f"{query_id(qid)}-{candidate}"

    return query_id, doc_id


@pytest.mark.parametrize("task", CATALOG, ids=lambda task: task.name)
def test_rows_are_read_as_mtebs_loader_reads_them(
    task: TaskDefinition, mteb_reads_undecoded: None, tmp_path: Path
) -> None:
    """The same queries and documents in the same order, with the same parts (texts as mteb
    encodes them: a document's stripped), and the same judgments and candidates (mteb's ids,
    named as ours name them)."""
    fixture = WRITERS[task.type](task, tmp_path / task.name)  # mteb caches by folder name
    local = task.model_copy(
        update={"dataset": task.dataset.model_copy(update={"path": str(fixture), "revision": None})}
    )
    loaded: Any = task_type(local).load(local, "test")
    ours = loaded.parts["default"]
    split = mteb_loaded(task.name, fixture).dataset["default"]["test"]
    query_id, doc_id = our_ids(task)
    if task.type == "multiple_choice":
        assert ours.candidates == {  # of the questions mteb scores (those with an answer)
            query_id(q): [doc_id(d) for d in docs]
            for q, docs in split["top_ranked"].items()
            if q in split["relevant_docs"]
        }
    assert ours.qrels == {
        query_id(q): {doc_id(d): score for d, score in docs.items()}
        for q, docs in split["relevant_docs"].items()
    }
    kept = [qid for qid in split["queries"]["id"] if qid in split["relevant_docs"]]
    assert [query.id for query in ours.queries] == [query_id(qid) for qid in kept]
    rows = [list(split["queries"]["id"]).index(qid) for qid in kept]
    for modality in task.sides.query:
        assert [stored_cell(modality, q.parts[modality]) for q in ours.queries] == [
            mteb_cell(modality, split["queries"][modality][row]) for row in rows
        ]
    documents = list(split["corpus"]["id"])
    if task.type == "multiple_choice":  # the candidates of the questions mteb scores
        ranked = {d for q in kept for d in split["top_ranked"][q]}
        documents = [d for d in documents if d in ranked]
    assert [doc.id for doc in ours.corpus] == [doc_id(d) for d in documents]
    positions = [list(split["corpus"]["id"]).index(d) for d in documents]
    for modality in task.sides.document:
        values = split["corpus"][modality]
        expected = [mteb_cell(modality, values[n]) for n in positions]
        if modality == "text":
            expected = [text.strip() for text in expected]
        assert [stored_cell(modality, d.parts[modality]) for d in ours.corpus] == expected


# --- video QA against mteb's evaluator --------------------------------------------------------

DIM = 8


def content_vector(text: str | None, clip_digest: str) -> np.ndarray:
    """The sum of a fixed random vector for the text and one for the clip (the same on both
    sides): a question worded as an answer text leans to that answer."""
    return sum(
        (
            random_vector(f"{kind}|{content}")
            for kind, content in (("text", text), ("clip", clip_digest))
            if content
        ),
        np.zeros(DIM, dtype=np.float32),
    )


def random_vector(key: str) -> np.ndarray:
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


class ContentAdapter:
    """Our side: vectors by content (a clip by the digest of its bytes; no frame decoded)."""

    meta = AdapterMeta("content", "1", "test", "cosine", ("text", "video"), "float32")

    def encode(self, items: Sequence[Item], **_: Any) -> np.ndarray:
        return np.stack(
            [
                content_vector(item.get("text"), item["video"].digest if "video" in item else "")
                for item in items
            ]
        )


class MtebContentModel:
    """mteb's side: the same vectors, from the batches mteb's dataloaders build."""

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        vectors = []
        for batch in inputs:
            size = len(next(iter(batch.values())))
            texts = batch.get("text") or [None] * size
            clips = [
                hashlib.sha256(value["bytes"]).hexdigest() if value else ""
                for value in batch.get("video") or [None] * size
            ]
            vectors += [content_vector(t, c) for t, c in zip(texts, clips, strict=True)]
        return np.stack(vectors)

    def similarity(self, a: Any, b: Any) -> Any:
        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return pairwise_cos_sim(a, b)

    @property
    def mteb_model_meta(self) -> None:
        return None


def write_qa_agreement_fixture(task: TaskDefinition, root: Path) -> Path:
    """Twelve questions with 3-6 candidates drawn from a shared pool of answer texts (so a
    full-corpus search would rank other questions' candidates too); one question without its
    answer; one worded as its answer, which it lists twice (a tie that mteb's ids break)."""
    rng = np.random.default_rng(3)
    pool = [f"answer {k}" for k in range(9)]
    candidates = [
        [str(text) for text in rng.choice(pool, size=int(rng.integers(3, 7)), replace=False)]
        for _ in range(12)
    ]
    answers = [texts[int(rng.integers(len(texts)))] for texts in candidates]
    candidates[2].append(answers[2])
    answers[5] = "not listed"
    questions = [f"question {n}?" for n in range(12)]
    questions[2] = answers[2]
    clips = [n % ROWS for n in range(12)]  # questions share clips, as OmniVideoBench's do
    return write_qa_table(task, root, clips, questions, candidates, answers)


@pytest.mark.parametrize(
    "task", [t for t in CATALOG if t.type == "multiple_choice"], ids=lambda task: task.name
)
def test_video_qa_scores_equal_mtebs_evaluator(
    task: TaskDefinition, mteb_reads_undecoded: None, tmp_path: Path
) -> None:
    """mteb's VideoCentricQA task end to end (its loader, its reranking search over each
    question's own candidates, its scoring: accuracy is recall@1) and ours, on the same
    vectors: every metric equal."""
    fixture = write_qa_agreement_fixture(task, tmp_path / f"{task.name}-agreement")
    reference = mteb_loaded(task.name, fixture)
    encode_kwargs = {"batch_size": 4, "show_progress_bar": False}
    expected = reference.evaluate(MtebContentModel(), "test", encode_kwargs=encode_kwargs)
    expected = {k: v for k, v in expected["default"].items() if not k.startswith("nauc")}
    local = task.model_copy(
        update={"dataset": task.dataset.model_copy(update={"path": str(fixture), "revision": None})}
    )
    encoder = BatchEncoder(ContentAdapter(), show_progress=False)
    [mine] = MultipleChoice().evaluate(local, encoder, split="test").subsets
    assert 0.0 < expected["accuracy"] < 1.0
    assert expected["accuracy"] == expected["recall_at_1"] == expected["main_score"]
    assert set(expected) <= set(mine)
    for key, value in expected.items():
        assert math.isclose(mine[key], value, abs_tol=1e-6), key
