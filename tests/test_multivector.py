"""Multi-vector adapters: tiny random ColQwen2 and ColPali models through load_adapter, the
encoder, the cache and ``harness run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mteb.similarity_functions import max_sim
from PIL import Image
from torch.nn.utils.rnn import pad_sequence

from harness.core.adapter import AdapterMeta
from harness.core.errors import BadInputError, HarnessError
from harness.core.image import EncodedImage
from harness.core.items import RawItem
from harness.engine.cache import EmbeddingCache
from harness.engine.encoding import BatchEncoder
from harness.model_adapters import late_interaction
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.registry import load_adapter
from tests.dataset_fixtures import (
    COLOURS,
    RGB,
    colour_retrieval,
    png_bytes,
    read_result_json,
    retrieval_task_yaml,
    run_cli,
)
from tests.tiny_models import build_tiny_colpali, build_tiny_colqwen2

# kind -> (builder, transformers model class, the processor's query prefix)
MODELS = {
    "colqwen2": (build_tiny_colqwen2, "ColQwen2ForRetrieval", "Query: "),
    "colpali": (build_tiny_colpali, "ColPaliForRetrieval", "Question: "),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def model_dir(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return MODELS[kind][0](tmp_path_factory.mktemp(f"tiny-{kind}"))


@pytest.fixture(scope="module")
def adapter(model_dir: Path):
    return load_adapter(str(model_dir))


def pages() -> list[Image.Image]:
    """Page images of different sizes, hence different numbers of image tokens."""
    return [Image.new("RGB", size, RGB[c]) for size, c in [((32, 32), "red"), ((112, 56), "blue")]]


def test_loads_as_a_late_interaction_adapter(kind, adapter) -> None:
    _, model_class, query_prefix = MODELS[kind]
    assert adapter.meta.family == "late-interaction" and adapter.meta.similarity == "maxsim"
    assert type(adapter.model).__name__ == model_class
    assert adapter.meta.embed_dim == 16 and adapter.meta.options["query_prefix"] == query_prefix


def test_one_token_array_per_item_at_the_real_tokens(kind, adapter) -> None:
    texts = ["a red square", "blue"]
    out = adapter.encode([{"text": t} for t in texts] + [{"image": p} for p in pages()])
    batch = adapter.processor(text=texts, return_tensors="pt")
    lengths = [len(o) for o in out]
    # A query prefix and 10 augmentation tokens around each text; ColQwen2 keeps a page's
    # aspect ratio, hence its number of tokens, ColPali resizes every page to one square.
    assert lengths[:2] == batch["attention_mask"].sum(dim=1).tolist()
    assert lengths[0] > lengths[1] and (lengths[2] < lengths[3]) == (kind == "colqwen2")
    assert all(o.dtype == np.float32 and o.shape[1] == 16 for o in out)
    np.testing.assert_allclose([np.linalg.norm(o, axis=1) for o in out[:1]], 1, atol=1e-5)


def test_batching_does_not_change_the_tokens(adapter) -> None:
    items = [{"text": "a red square with a big cat"}, {"text": "blue"}]
    items += [{"image": page} for page in pages()]
    together = adapter.encode(items)
    for item, tokens in zip(items, together, strict=True):
        np.testing.assert_allclose(adapter.encode([item])[0], tokens, atol=1e-5)


def test_pages_preprocessed_one_by_one_collate_to_the_processors_batch(kind, adapter) -> None:
    """Preprocess runs per page in the workers; the batch it collates to must be the very
    inputs the processor builds for the pages together (padded token rows, patches)."""
    preprocessed = [adapter.preprocess({"image": page})["image"] for page in pages()]
    collated = adapter.collate(preprocessed)
    expected = adapter.processor(images=pages(), return_tensors="pt")
    assert set(collated) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(collated[key], value, rtol=0, atol=0)
    if kind == "colqwen2":  # pages of different sizes: the first page's rows were padded
        assert len({len(p["input_ids"][0]) for p in preprocessed}) == 2


def test_text_and_image_item_concatenates_text_then_image_tokens(adapter) -> None:
    page = pages()[0]
    [both] = adapter.encode([{"text": "red", "image": page}])
    text, image = adapter.encode([{"text": "red"}, {"image": page}])
    np.testing.assert_allclose(both, np.vstack([text, image]), atol=1e-5)


def test_empty_item_is_bad_input(adapter) -> None:
    with pytest.raises(BadInputError, match="item 1 has neither"):
        adapter.encode([{"text": "red"}, {}])


def test_wrong_model_or_options_are_clear_errors(tiny_clip_dir: Path, model_dir: Path) -> None:
    with pytest.raises(HarnessError, match="'clip' model; the late-interaction family loads"):
        request = LoadRequest(source=str(tiny_clip_dir), name="c", revision="r")
        late_interaction.LateInteractionAdapter(request)
    with pytest.raises(
        HarnessError, match=r"unknown option\(s\) pooling; the options it accepts: document_parts"
    ):
        load_adapter(str(model_dir), options={"pooling": "mean"})


def test_processor_is_built_from_its_parts_when_auto_processor_fails(
    model_dir: Path, adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args, **kwargs):
        raise ImportError("this processor needs torchvision")

    monkeypatch.setattr(late_interaction.AutoProcessor, "from_pretrained", fail)
    rebuilt = load_adapter(str(model_dir))
    assert type(rebuilt.processor) is type(adapter.processor)
    items = [{"text": "a red square"}, {"image": pages()[1]}]
    for got, expected in zip(rebuilt.encode(items), adapter.encode(items), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_encoder_caches_ragged_token_arrays(adapter, tmp_path: Path) -> None:
    items = [
        RawItem.of("t", text="a blue circle"),
        RawItem.of("i", image=EncodedImage(png_bytes(RGB["green"], size=60))),
        RawItem.of("bad", image=EncodedImage(b"not an image")),
    ]
    first = BatchEncoder(adapter, cache=EmbeddingCache(tmp_path), skip_bad_inputs=True)
    encoded = first.encode(items, role="document")
    assert encoded.vectors.dtype == object and encoded.kept.tolist() == [True, True, False]
    assert encoded.vectors[2].shape == (0, 16) and encoded.skipped == ("bad",)
    again = BatchEncoder(adapter, cache=EmbeddingCache(tmp_path), skip_bad_inputs=True)
    cached = again.encode(items[:2], role="document")
    assert again.stats.model_calls == 0 and again.stats.cache_hits == 2
    for got, expected in zip(cached.vectors, encoded.vectors[:2], strict=True):
        np.testing.assert_array_equal(got, expected)


class FlatTokens:
    """A broken multi-vector adapter that returns one flat vector per item."""

    meta = AdapterMeta("flat", "v1", "test", "maxsim", ("text",), "float32")

    def encode(self, items, *, role=None, instruction=None):
        return np.ones((len(items), 4), np.float32)


def test_encoder_rejects_multi_vector_output_without_tokens() -> None:
    with pytest.raises(HarnessError, match=r"'flat' must return one \(tokens, d\) array"):
        BatchEncoder(FlatTokens(), show_progress=False).encode([RawItem.of("a", text="red")])


def test_harness_run_scores_t2i_retrieval_by_maxsim(adapter, model_dir, tmp_path) -> None:
    data = colour_retrieval(tmp_path / "data", "t2i")
    task = retrieval_task_yaml(tmp_path / "task.yaml", "ColourMaxSim", data)
    assert run_cli(model_dir, task, tmp_path) == 0
    result = read_result_json(tmp_path, "ColourMaxSim")
    [scores] = result["scores"]["test"]
    assert result["harness"]["model"]["similarity"] == "maxsim"
    # Reference: mteb's max_sim on the corpus zero-padded as its ColPali wrappers pad it.
    queries = adapter.encode([{"text": f"a {name} square"} for name in COLOURS])
    images = [EncodedImage(png_bytes(RGB[name], seed=i)) for i, name in enumerate(COLOURS)]
    docs = adapter.encode([{"image": image.decode()} for image in images])
    matrix = max_sim(
        pad_sequence([torch.from_numpy(q) for q in queries], batch_first=True),
        pad_sequence([torch.from_numpy(d) for d in docs], batch_first=True),
    )
    ranks = (matrix > matrix.diagonal()[:, None]).sum(dim=1)
    ndcg = torch.where(ranks < 10, 1 / torch.log2(ranks + 2.0), 0).mean().item()
    assert scores["main_score"] == scores["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-5)


def test_single_vector_task_types_refuse_a_multi_vector_model(tmp_path: Path) -> None:
    from harness.core.errors import HarnessError
    from harness.tasks.registry import TASK_TYPES, load_task_file
    from tests.dataset_fixtures import colour_retrieval, retrieval_task_yaml

    data = colour_retrieval(tmp_path / "data", "t2i")
    [task] = load_task_file(retrieval_task_yaml(tmp_path / "t.yaml", "Colours", data, "t2i"))
    TASK_TYPES["retrieval"].check_adapter(task, "maxsim")
    for name in ("multiple_choice", "linear_probe", "zero_shot_classification", "visual_sts"):
        with pytest.raises(HarnessError, match="multi-vector"):
            TASK_TYPES[name].check_adapter(task, "maxsim")
