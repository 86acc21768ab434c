"""Issue 14, items 2 and 3: the modality registry is the single source of what an input part
is, and an adapter's preprocess step runs in the DataLoader workers.

A toy sonar modality (float32 samples) and a toy depth-map modality, registered here and nowhere
else, go through categories, items, cache keys, sharding costs, dataset columns and the encoder
end to end, with no change to task types, the encoder, sharding or scorers.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import datasets
import numpy as np
import pytest

from harness.core.adapter import AdapterMeta, Item, Preprocessing, Role
from harness.core.errors import BadInputError
from harness.core.items import RawItem
from harness.core.modalities import (
    Modality,
    modality,
    parse_category,
    register,
    registered,
    unregister,
)
from harness.engine.cache import EmbeddingCache
from harness.engine.distributed import item_cost
from harness.engine.encoding import BatchEncoder
from harness.tasks.loading import undecoded


@pytest.fixture
def undecoded_dataset() -> datasets.Dataset:
    """A dataset whose ``clip`` column is a ``datasets.Audio`` column."""
    stored = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    features = datasets.Features({"id": datasets.Value("string"), "clip": stored})
    rows = {"id": ["a0"], "clip": [{"bytes": _wave(1.0, 2.0), "path": None}]}
    data = datasets.Dataset.from_dict(rows, features=features)
    return data.cast_column("clip", datasets.Audio())  # as a hub audio column reads


class StoredAudio(bytes):
    """A toy audio part as stored: little-endian float32 samples."""


def _wave(*samples: float) -> bytes:
    return struct.pack(f"<{len(samples)}f", *samples)


def _read_audio(value: Any) -> StoredAudio:
    stored = value.get("bytes") if isinstance(value, dict) else value
    if not isinstance(stored, bytes) or not stored or len(stored) % 4:
        raise ValueError("holds no float32 samples where sonar belongs; store them in it")
    return StoredAudio(stored)


def _decode_audio(value: StoredAudio) -> np.ndarray:
    samples = np.frombuffer(value, dtype="<f4")
    if not np.isfinite(samples).all():
        raise ValueError("the waveform has non-finite samples")
    return samples


def _audio_feature(feature: Any) -> Any | None:
    return datasets.Audio(decode=False) if isinstance(feature, datasets.Audio) else None


AUDIO = Modality(
    name="sonar",
    letter="s",
    read=_read_audio,
    digest=bytes,
    cost=lambda value: float(len(value) // 4),
    decode=_decode_audio,
    length=lambda value: len(value) // 4,
    undecoded_feature=_audio_feature,
)
DEPTH = Modality(name="depth", letter="d", read=bytes, digest=bytes, cost=float)


@pytest.fixture
def toy_modalities() -> Iterator[None]:
    register(AUDIO)
    register(DEPTH)
    try:
        yield
    finally:
        unregister("sonar")
        unregister("depth")


def test_text_image_audio_and_video_are_built_in_in_cache_key_order() -> None:
    assert [entry.name for entry in registered()] == ["text", "image", "audio", "video"]
    assert [entry.letter for entry in registered()] == ["t", "i", "a", "v"]
    with pytest.raises(ValueError, match="built in"):
        unregister("text")


def test_a_new_modality_needs_a_new_name_and_letter(toy_modalities: None) -> None:
    with pytest.raises(ValueError, match="clashes"):
        register(Modality(name="sonar", letter="u", read=bytes, digest=bytes, cost=float))
    with pytest.raises(ValueError, match="clashes"):
        register(Modality(name="speech", letter="s", read=bytes, digest=bytes, cost=float))
    with pytest.raises(ValueError, match="cannot be a letter"):
        register(Modality(name="labels", letter="c", read=bytes, digest=bytes, cost=float))


def test_categories_with_new_letters_parse(toy_modalities: None) -> None:
    assert parse_category("s2t").query == ("sonar",)
    sides = parse_category("ds2t")
    assert sides.query == ("sonar", "depth") and sides.document == ("text",)
    assert parse_category("t2s").inputs == ("text", "sonar")
    assert parse_category("s2c").labels


def test_unregistered_letters_do_not_parse() -> None:
    with pytest.raises(ValueError, match="'s' is not a set of modality letters"):
        parse_category("s2t")


def test_items_carry_new_parts_with_stable_keys_and_costs(toy_modalities: None) -> None:
    item = RawItem.read("x", {"sonar": ("clip", _wave(0.5, -0.5)), "text": ("caption", "hi")})
    assert item.fault is None and item.modality == "sonar,text"
    # Parts hash in registration order: text, image, audio, then sonar.
    assert item.content_digest() == (
        "101b45421e2bdb25966a63b04bb0ceaa91f5ddc5dab04ce79111474dfccade53"
    )
    same = RawItem.of("y", text="hi", sonar=StoredAudio(_wave(0.5, -0.5)))
    assert same.content_digest() == item.content_digest()
    assert item_cost(item) == 1 + 2 + 2  # one, two samples, two characters
    decoded = item.decoded()
    assert decoded["text"] == "hi" and decoded["sonar"].tolist() == [0.5, -0.5]


def test_bad_new_parts_are_faults_naming_their_column(toy_modalities: None) -> None:
    unreadable = RawItem.read("x", {"sonar": ("clip", b"abc")})
    assert unreadable.fault == (
        "column 'clip' holds no float32 samples where sonar belongs; store them in it"
    )
    undecodable = RawItem.read("y", {"sonar": ("clip", _wave(float("nan")))})
    with pytest.raises(BadInputError, match="the sonar in column 'clip' cannot be decoded"):
        undecodable.decoded()
    empty = RawItem.read("z", {"text": ("q", " "), "sonar": ("clip", None)}, optional=True)
    assert empty.fault == "has neither text nor sonar (columns 'q' and 'clip' are empty)"


def test_parts_must_be_registered() -> None:
    with pytest.raises(KeyError, match="no modality 'sonar'"):
        RawItem.of("x", sonar=b"\0\0\0\0")
    with pytest.raises(KeyError, match="no modality 'sonar'"):
        RawItem.read("x", {"text": ("q", "hi"), "sonar": ("clip", b"\0\0\0\0")})


def test_new_columns_are_read_undecoded(
    toy_modalities: None, undecoded_dataset: datasets.Dataset
) -> None:
    data = undecoded(undecoded_dataset, ["id", "clip"])
    assert data.features["clip"] == datasets.Audio(decode=False)
    assert data[0]["clip"]["bytes"] == _wave(1.0, 2.0)
    assert modality("sonar").read(data[0]["clip"]) == _wave(1.0, 2.0)


class ToyAudioAdapter:
    """Embeds audio by its mean and length and text by its length; its preprocess step (a
    stand-in for resampling) runs in the workers and records the process it ran in."""

    meta = AdapterMeta("toy-audio", "v1", "test", "cosine", ("sonar", "text"), "float32")

    def __init__(self) -> None:
        self.pids: set[int] = set()

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        if "pid" in item:
            return item
        audio = item.get("sonar")
        resampled = None if audio is None else audio[::2]
        return {**item, "sonar": resampled, "pid": os.getpid()}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        items = [self.preprocess(item) for item in items]
        self.pids |= {item["pid"] for item in items}
        rows = []
        for item in items:
            audio = item["sonar"] if item["sonar"] is not None else np.zeros(1, np.float32)
            rows.append([float(audio.mean()), len(audio), len(item.get("text") or ""), 1.0])
        return np.asarray(rows, dtype=np.float32)


def _toy_items() -> list[RawItem]:
    items = [RawItem.of(f"a{n}", sonar=_wave(*range(n + 1))) for n in range(6)]
    items += [RawItem.of("both", sonar=_wave(3.0, 1.0), text="a dog barks")]
    return [*items, RawItem.of("t0", text="rain on a roof")]


def test_new_modality_encodes_end_to_end_in_workers(toy_modalities: None, tmp_path) -> None:
    adapter = ToyAudioAdapter()
    assert isinstance(adapter, Preprocessing)
    items = _toy_items()
    main_only = ToyAudioAdapter()
    reference = BatchEncoder(main_only, batch_size=3, show_progress=False).encode(items)
    encoder = BatchEncoder(
        adapter, cache=EmbeddingCache(tmp_path), batch_size=3, num_workers=2, show_progress=False
    )
    encoded = encoder.encode(items)
    np.testing.assert_array_equal(encoded.vectors, reference.vectors)
    assert encoded.vectors[6].tolist() == [3.0, 1.0, len("a dog barks"), 1.0]
    assert os.getpid() not in adapter.pids and len(adapter.pids) >= 1
    assert main_only.pids == {os.getpid()}
    assert encoder.stats.parts_decoded == 7  # the seven audio parts; texts need no decoding
    again = BatchEncoder(ToyAudioAdapter(), cache=EmbeddingCache(tmp_path), show_progress=False)
    np.testing.assert_array_equal(again.encode(items).vectors, reference.vectors)
    assert again.stats.model_calls == 0 and again.stats.cache_hits == len(items)


def test_preprocess_errors_of_bad_input_skip_the_item(toy_modalities: None) -> None:
    class Picky(ToyAudioAdapter):
        def preprocess(self, item: Item, **kwargs: Any) -> Item:
            if item.get("sonar") is not None and len(item["sonar"]) > 4:
                raise BadInputError("the audio is longer than 4 samples")
            return super().preprocess(item, **kwargs)

    encoder = BatchEncoder(Picky(), skip_bad_inputs=True, num_workers=2, show_progress=False)
    encoded = encoder.encode(_toy_items())
    assert encoded.skipped == ("a4", "a5")
    with pytest.raises(BadInputError, match="item 'a5': the audio is longer than 4 samples"):
        BatchEncoder(Picky(), show_progress=False).encode(_toy_items())
