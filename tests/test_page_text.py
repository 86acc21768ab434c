"""Documents that are a page plus its text (category ``t2it``, ViDoRe v3.1): each family's
default ``document_parts`` and the override, the vectors each mode gives, the mode in the
metadata, fingerprint and result, and a text-only model running such a task on the texts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest

from harness.app.plan import modality_problem
from harness.core.adapter import Adapter, AdapterMeta, Role
from harness.core.document_parts import document_items, embeddable_side
from harness.core.encoder import Encoded
from harness.core.errors import HarnessError
from harness.core.image import EncodedImage
from harness.core.items import RawItem
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.registry import family, load_adapter
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import load_task_file, task_type
from tests.dataset_fixtures import (
    RGB,
    png_bytes,
    read_result_json,
    retrieval_task_yaml,
    run_cli,
    write_hub_dataset,
)
from tests.tiny_mllm_embedders import build_tiny_e5v
from tests.tiny_models import (
    build_tiny_clip,
    build_tiny_colpali,
    build_tiny_qwen2_5_omni_thinker,
    build_tiny_qwen2_vl,
)

TASK = "PageTextRetrieval"
COLOURS = ("red", "green", "blue", "yellow", "black", "white")
MINILM = "all-MiniLM-L6-v2"
# mteb's retrieval layout of a v3.1 dataset: a corpus of page images with their OCR'ed markdown
# under ``text``, text queries, qrels.
CORPUS = datasets.Features(
    {"id": datasets.Value("string"), "image": datasets.Image(), "text": datasets.Value("string")}
)
QUERIES = datasets.Features({"id": datasets.Value("string"), "text": datasets.Value("string")})
QRELS = datasets.Features(
    {
        "query-id": datasets.Value("string"),
        "corpus-id": datasets.Value("string"),
        "score": datasets.Value("int64"),
    }
)


def write_page_text(root: Path, *, without_text: int | None = None) -> Path:
    """A tiny t2it dataset: page ``d<i>`` is a colour swatch with the markdown "# the <colour>
    car" (none for page ``without_text``), query ``q<i>`` asks for the <colour> car."""
    corpus = [
        {
            "id": f"d{i}",
            "image": {"bytes": png_bytes(RGB[colour], seed=i), "path": None},
            "text": None
            if i == without_text
            else f"# the {colour} car\n\na {colour} car on a road",
        }
        for i, colour in enumerate(COLOURS)
    ]
    queries = [{"id": f"q{i}", "text": f"a {colour} car"} for i, colour in enumerate(COLOURS)]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(len(COLOURS))]
    parts = {"corpus": (corpus, CORPUS), "queries": (queries, QUERIES), "qrels": (qrels, QRELS)}
    return write_hub_dataset(root, parts)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("page-text")
    data = write_page_text(root / TASK)
    return retrieval_task_yaml(root / f"{TASK}.yaml", TASK, data, category="t2it")


@pytest.fixture(scope="module")
def task(task_file: Path) -> TaskDefinition:
    [definition] = load_task_file(task_file)
    return definition


def meta(modalities: tuple[str, ...], document_parts: Any = None) -> AdapterMeta:
    return AdapterMeta(
        name="m",
        revision="r",
        family="f",
        similarity="cosine",
        modalities=modalities,
        dtype="float32",
        document_parts=document_parts,
    )


PAGE = EncodedImage(data=b"page bytes")  # never decoded here


def page_items() -> list[RawItem]:
    return [
        RawItem.of("both", text="# title", image=PAGE),
        RawItem.of("page", image=PAGE),
        RawItem.of("text", text="body"),
    ]


@pytest.mark.parametrize(
    ("document_parts", "expected"),
    [
        ("fused", [{"image", "text"}, {"image"}, {"text"}]),
        ("image", [{"image"}, {"image"}, None]),
        ("text", [{"text"}, None, {"text"}]),
    ],
)
def test_each_mode_keeps_its_parts_and_faults_a_document_left_without_one(
    document_parts: str, expected: list[set[str] | None]
) -> None:
    kept = document_items(page_items(), ("text", "image"), meta(("image", "text"), document_parts))
    for item, parts in zip(kept, expected, strict=True):
        if parts is None:
            assert item.fault is not None and f"document_parts: {document_parts}" in item.fault
        else:
            assert item.fault is None and set(item.parts) == parts
    if document_parts != "fused":  # the cache key is that of the parts kept
        assert kept[0].content_digest() != page_items()[0].content_digest()


def test_modes_apply_to_page_plus_text_documents_only() -> None:
    items = page_items()
    for side in (("image",), ("text",)):
        assert document_items(items, side, meta(("image", "text"), "text")) == items
    # Without a declared mode a model keeps what it embeds (a text-only model: the texts).
    kept = document_items(items, ("image", "text"), meta(("text",)))
    assert [set(item.parts) for item in kept if item.fault is None] == [{"text"}, {"text"}]
    assert embeddable_side(("image", "text"), ("text",)) == {"text"}
    assert embeddable_side(("image", "text"), ("audio",)) == {"image", "text"}
    assert embeddable_side(("image",), ("text",)) == {"image"}


def test_a_text_only_model_may_run_a_t2it_retrieval_task_only(task: TaskDefinition) -> None:
    assert modality_problem(task, MINILM, ("text",)) is None
    assert modality_problem(task, "clip", ("image", "text", "video")) is None
    for category in ("t2i", "it2it"):
        other = task.model_copy(update={"category": category})
        problem = modality_problem(other, MINILM, ("text",))
        assert problem is not None and "needs image inputs" in problem
    assert "needs image and text inputs" in (modality_problem(task, "au", ("audio",)) or "")


@dataclass
class RecordingEncoder:
    """The encoder contract over one adapter, without cache or batching; it keeps the documents
    it was handed and their vectors."""

    adapter: Adapter
    device: str = "cpu"
    documents: list[RawItem] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)

    def encode(
        self,
        items: Sequence[RawItem],
        *,
        role: Role = None,
        instruction: str | None = None,
        task: str = "",
    ) -> Encoded:
        decoded = [item.decoded() for item in items]
        vectors = self.adapter.encode(decoded, role=role, instruction=instruction)
        rows = list(vectors)
        if role == "document":
            self.documents, self.vectors = list(items), rows
        matrix = vectors
        if isinstance(vectors, list):  # multi-vector: an object array of (tokens, d) arrays
            matrix = np.empty(len(rows), dtype=object)
            for index, row in enumerate(rows):
                matrix[index] = row
        return Encoded(matrix, np.ones(len(rows), dtype=bool))


# A tiny model of each family that embeds images and texts, by family name.
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "clip": build_tiny_clip,
    "late-interaction": build_tiny_colpali,
    "mllm": build_tiny_qwen2_5_omni_thinker,
    "mllm-vision": build_tiny_qwen2_vl,
    "gme": build_tiny_qwen2_vl,  # GME is a Qwen2-VL checkpoint
    "llava-next": build_tiny_e5v,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """A family's name and the directory of its tiny model."""
    name = request.param
    return name, BUILDERS[name](tmp_path_factory.mktemp(f"tiny-{name}"))


def loaded(case: tuple[str, Path], **options: Any) -> Adapter:
    """The family's adapter for its tiny model, loaded by the family as a run loads it."""
    name, directory = case
    request = LoadRequest(source=str(directory), name="tiny", revision="t", options=options)
    return family(name).load(request)


def scored_documents(adapter: Adapter, task: TaskDefinition) -> RecordingEncoder:
    """Score the task with the adapter; the encoder holds the documents it embedded."""
    kind = task_type(task)
    encoder = RecordingEncoder(adapter)
    kind.score(task, kind.load(task, "test"), encoder)
    return encoder


def same(left: Sequence[np.ndarray], right: Sequence[np.ndarray]) -> bool:
    return len(left) == len(right) and all(
        a.shape == b.shape and np.allclose(a, b, atol=1e-5)
        for a, b in zip(left, right, strict=True)
    )


def pages(task: TaskDefinition) -> list[dict[str, Any]]:
    """The decoded documents of the task, both parts each."""
    return [item.decoded() for item in task_type(task).load(task, "test").parts["default"].corpus]


def test_each_family_embeds_the_parts_its_mode_names(
    case: tuple[str, Path], task: TaskDefinition
) -> None:
    documents = pages(task)
    vectors = {}
    for mode in ("fused", "image", "text"):
        adapter = loaded(case, document_parts=mode) if mode != "fused" else loaded(case)
        assert adapter.meta.document_parts == mode
        encoder = scored_documents(adapter, task)
        kept = {"image", "text"} if mode == "fused" else {mode}
        assert all(set(item.parts) == kept for item in encoder.documents)
        alone = [{k: v for k, v in page.items() if k in kept} for page in documents]
        assert same(encoder.vectors, list(adapter.encode(alone, role="document")))
        vectors[mode] = encoder.vectors
    # The fused vectors use both parts: they are neither the page's nor the text's.
    assert not same(vectors["fused"], vectors["image"])
    assert not same(vectors["fused"], vectors["text"])
    if case[0] == "clip":  # mteb's CLIP wrappers: text embedding + image embedding
        summed = [t + i for t, i in zip(vectors["text"], vectors["image"], strict=True)]
        assert same(vectors["fused"], summed)
    if case[0] == "late-interaction":  # mteb's ColPali: text tokens, then the page's
        pairs = zip(vectors["text"], vectors["image"], strict=True)
        joined = [np.concatenate([t, i]) for t, i in pairs]
        assert same(vectors["fused"], joined)


def test_the_mode_is_recorded_and_an_override_keys_the_fingerprint(tiny_clip_dir: Path) -> None:
    default = load_adapter(str(tiny_clip_dir))
    assert default.meta.document_parts == "fused"
    assert "document_parts" not in default.meta.options
    # The default leaves the fingerprint of runs made before document parts existed.
    assert replace(default.meta, document_parts=None).fingerprint == default.meta.fingerprint
    assert default.meta.to_dict()["document_parts"] == "fused"
    prints = {default.meta.fingerprint}
    for mode in ("image", "text"):
        chosen = load_adapter(str(tiny_clip_dir), options={"document_parts": mode})
        assert chosen.meta.document_parts == chosen.meta.options["document_parts"] == mode
        prints.add(chosen.meta.fingerprint)
    assert len(prints) == 3
    explicit = load_adapter(str(tiny_clip_dir), options={"document_parts": "fused"})
    assert explicit.meta.fingerprint == default.meta.fingerprint


def test_bad_values_and_text_only_models_are_refused_before_loading(tiny_clip_dir: Path) -> None:
    with pytest.raises(HarnessError, match="document_parts must be one of fused, image, text"):
        load_adapter(str(tiny_clip_dir), options={"document_parts": "both"})
    with pytest.raises(HarnessError, match=r"unknown option\(s\) document_parts"):
        family("sentence-transformers").check_options(MINILM, {"document_parts": "text"})
    assert "document_parts" in (family("late-interaction").accepted_options() or ())
    assert family("sentence-transformers").default_document_parts == "text"
    assert family("audio-encoder").default_document_parts is None
    with pytest.raises(ValueError, match="needs image and text"):
        replace(family("sentence-transformers"), document_parts="fused")


def test_a_text_only_model_runs_a_t2it_task_on_the_texts(task_file: Path, tmp_path: Path) -> None:
    assert run_cli(MINILM, task_file, tmp_path, "--dry-run") == 0
    assert run_cli(MINILM, task_file, tmp_path) == 0
    result = read_result_json(tmp_path, TASK)
    record = result["harness"]
    assert record["model"]["document_parts"] == "text"
    assert record["encoding"]["parts_decoded"] == 0  # no page image was decoded
    main = result["scores"]["test"][0]["main_score"]
    assert main > record["task"]["chance_level"]["test"]


def test_runs_in_two_modes_keep_apart(tiny_clip_dir: Path, task_file: Path, tmp_path: Path) -> None:
    records = {}
    for mode in ("fused", "image"):
        out = tmp_path / mode
        assert run_cli(tiny_clip_dir, task_file, out, "--model-args", f"document_parts={mode}") == 0
        records[mode] = read_result_json(out, TASK)["harness"]["model"]
    assert records["fused"]["document_parts"] == "fused"
    assert records["image"]["document_parts"] == records["image"]["options"]["document_parts"]
    assert records["image"]["fingerprint"] != records["fused"]["fingerprint"]


def test_a_bad_mode_exits_2_naming_the_choices(
    tiny_clip_dir: Path, task_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tiny_clip_dir, task_file, tmp_path, "--model-args", "document_parts=all") == 2
    error = capsys.readouterr().err
    assert "option document_parts must be one of fused, image, text" in error
    assert "'all'" in error and "Traceback" not in error


def test_a_page_without_text_is_bad_input_for_a_text_only_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_page_text(tmp_path / TASK, without_text=2)
    task_file = retrieval_task_yaml(tmp_path / "task.yaml", TASK, data, category="t2it")
    assert run_cli(MINILM, task_file, tmp_path) == 2
    error = capsys.readouterr().err
    assert "item 'd2'" in error and "document_parts: text" in error
    assert run_cli(MINILM, task_file, tmp_path, "--skip-bad-inputs") == 0
    skipped = json.dumps(read_result_json(tmp_path, TASK)["harness"]["skipped_inputs"])
    assert "d2" in skipped


def test_text_only_vectors_match_mteb_on_the_text_part(task: TaskDefinition) -> None:
    """mteb runs a text-only model on a t2it corpus through its multimodal path: each document
    as prepared for a text corpus (``_corpus_to_dict``), then reduced to the modalities the
    model supports (``_batch_to_modality_dicts``), then ``SentenceTransformer.encode``."""
    from mteb._create_dataloaders import _corpus_to_dict
    from mteb.models.sentence_transformer_wrapper import _batch_to_modality_dicts

    adapter = load_adapter(MINILM)
    ours = scored_documents(adapter, task)
    rows = datasets.load_dataset(task.dataset.path, "corpus", split="test")
    prepared = [_corpus_to_dict(row) | {"image": row["image"]} for row in rows]
    batch = {key: [row[key] for row in prepared] for key in ("id", "text", "image")}
    inputs = _batch_to_modality_dicts(batch, ["text"])
    assert [set(one) for one in inputs] == [{"text"}] * len(rows)
    reference = adapter.model.encode(inputs, convert_to_numpy=True)  # type: ignore[attr-defined]
    assert [item.id for item in ours.documents] == batch["id"]
    assert same(ours.vectors, list(reference))
