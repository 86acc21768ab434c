"""Write the audio demo datasets (clips of :mod:`harness.tasks.demo.sounds`) in MAEB's hub layouts.

``DemoAudioA2TRetrieval`` (task index 12) and ``DemoAudioT2ARetrieval`` (13) use the layout of
the shapes retrieval demo: configs ``corpus``, ``queries`` and ``qrels`` (split ``test``); corpus
and queries rows are ``id``, ``modality`` ("text" or "audio"), ``text`` and ``audio``; qrels rows
``query-id``, ``corpus-id``, ``score``. A2T: every clip queries the 27 captions (one relevant);
T2A: every caption queries the clips (:data:`CLIPS_PER_CAPTION` relevant).

``DemoAudioClassification`` (14) serves the linear-probe, zero-shot and clustering demos: one
config ``default``, splits ``train`` and ``test``, columns ``audio`` and ``label`` (a
``ClassLabel`` whose names are the 15 class labels, "someone saying left", "a low tone"...).

Clips are FLAC (16 kHz mono 16-bit) in a ``datasets.Audio`` column. In the retrieval tasks, clip
``k`` of caption ``c`` in task ``t`` is ``sample_sound(caption, (DATA_SEED, t, c, k))``; see
:func:`labelled_sounds` for the classification clips.

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is ``harness/tasks/demo/data``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import soundfile

from harness.tasks.demo.build import DATA_SEED, data_path, shuffled
from harness.tasks.demo.sounds import (
    GENERATOR_VERSION,
    MAX_SECONDS,
    SAMPLING_RATE,
    Sound,
    captions,
    label_of,
    labels,
    missing_tools,
    sample_sound,
    synthesize,
    tool_versions,
)

A2T_INDEX, T2A_INDEX, CLASSIFICATION_INDEX = 12, 13, 14
CLIPS_PER_CAPTION = 5
PER_LABEL = {"train": 12, "test": 8}
SPLITS = ("train", "test")
ITEM_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "text": datasets.Value("string"),
        "audio": datasets.Audio(),
    }
)
QREL_FEATURES = datasets.Features(
    {
        "query-id": datasets.Value("string"),
        "corpus-id": datasets.Value("string"),
        "score": datasets.Value("int64"),
    }
)

AUDIO_STORAGE = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}

Row = dict[str, object]


@dataclass(frozen=True)
class AudioDataset:
    """One dataset folder: its name, configs (``{config: (split, rows, features)}``) and the
    README's description."""

    name: str
    index: int
    parts: dict[str, list[tuple[str, list[Row], datasets.Features]]]
    description: str


def flac_bytes(sound: Sound) -> bytes:
    """The sound synthesised and encoded as FLAC."""
    buffer = io.BytesIO()
    soundfile.write(buffer, synthesize(sound), SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def caption_sounds(index: int, per_caption: int) -> list[Sound]:
    """``per_caption`` test clips of every caption, caption by caption."""
    return [
        sample_sound(caption, (DATA_SEED, index, c, k))
        for c, caption in enumerate(captions())
        for k in range(per_caption)
    ]


def _text_row(row_id: str, text: str) -> Row:
    return {"id": row_id, "modality": "text", "text": text, "audio": None}


def _audio_row(row_id: str, sound: Sound) -> Row:
    return {"id": row_id, "modality": "audio", "text": None, "audio": _cell(sound)}


def _cell(sound: Sound) -> dict[str, object]:
    return {"bytes": flac_bytes(sound), "path": None}


def retrieval_dataset(name: str, index: int, audio_queries: bool) -> AudioDataset:
    """A2T (``audio_queries``) or T2A retrieval between the captions and their clips."""
    sounds = caption_sounds(index, CLIPS_PER_CAPTION)
    texts = {caption: f"t{c:03d}" for c, caption in enumerate(captions())}
    clips = [(f"a{k:04d}", sound) for k, sound in enumerate(sounds)]
    text_rows = [_text_row(row_id, caption) for caption, row_id in texts.items()]
    audio_rows = [_audio_row(row_id, sound) for row_id, sound in clips]
    qrels: list[Row] = [
        {
            "query-id": row_id if audio_queries else texts[sound.caption],
            "corpus-id": texts[sound.caption] if audio_queries else row_id,
            "score": 1,
        }
        for row_id, sound in clips
    ]
    queries, corpus = (audio_rows, text_rows) if audio_queries else (text_rows, audio_rows)
    corpus = shuffled(corpus, (DATA_SEED, index, 1))
    if audio_queries:
        description = (
            f"Each of {len(clips)} clips retrieves its caption among the {len(texts)} captions "
            '("a woman saying left", "a rising square tone", "pink noise"...).'
        )
    else:
        description = (
            f"Each of the {len(texts)} captions retrieves its {CLIPS_PER_CAPTION} clips among "
            f"{len(clips)}."
        )
    parts = {
        "corpus": [("test", corpus, ITEM_FEATURES)],
        "queries": [("test", queries, ITEM_FEATURES)],
        "qrels": [("test", qrels, QREL_FEATURES)],
    }
    return AudioDataset(name, index, parts, description)


def labelled_sounds(split: str) -> list[tuple[int, Sound]]:
    """DemoAudioClassification's (label id, clip) pairs of ``split``, label by label. Each clip
    renders one of its label's captions, drawn at random ("someone saying left": a man or a
    woman; "a low tone": sine or square)."""
    split_code = SPLITS.index(split) + 1
    pairs = []
    for label, name in enumerate(labels()):
        options = [caption for caption in captions() if label_of(caption) == name]
        for k in range(PER_LABEL[split]):
            seed = (DATA_SEED, CLASSIFICATION_INDEX, split_code, label, k)
            choice = np.random.default_rng((*seed, 1)).integers(len(options))
            pairs.append((label, sample_sound(options[int(choice)], seed)))
    return pairs


def demo_sounds() -> list[Sound]:
    """Every clip of the audio demo datasets (not synthesised)."""
    retrieval = [caption_sounds(index, CLIPS_PER_CAPTION) for index in (A2T_INDEX, T2A_INDEX)]
    labelled = [sound for split in SPLITS for _, sound in labelled_sounds(split)]
    return [*retrieval[0], *retrieval[1], *labelled]


def classification_dataset() -> AudioDataset:
    """DemoAudioClassification: 15 class labels, 12 train and 8 test clips each."""
    names = labels()
    features = datasets.Features(
        {"audio": datasets.Audio(), "label": datasets.ClassLabel(names=list(names))}
    )
    splits = []
    for split_code, split in enumerate(SPLITS, start=1):
        rows = [{"audio": _cell(sound), "label": label} for label, sound in labelled_sounds(split)]
        splits.append((split, shuffled(rows, (DATA_SEED, CLASSIFICATION_INDEX, split_code))))
    description = (
        f"Which of {len(names)} classes a clip is: a spoken word (8, any speaker), a low, high, "
        "rising or falling tone (sine or square), or white, pink or brown noise. Serves the "
        "linear-probe, zero-shot and clustering audio demo tasks."
    )
    parts = {"default": [(split, rows, features) for split, rows in splits]}
    return AudioDataset("DemoAudioClassification", CLASSIFICATION_INDEX, parts, description)


def _readme(dataset: AudioDataset) -> str:
    tools = tool_versions()
    configs = "".join(
        f"- config_name: {config}\n  data_files:\n"
        + "".join(
            f"  - split: {split}\n    path: {data_path(config, split)}\n" for split, _, _ in parts
        )
        for config, parts in dataset.parts.items()
    )
    sizes = ", ".join(
        f"{len(rows)} {config if config != 'default' else split} rows"
        for config, parts in dataset.parts.items()
        for split, rows, _ in parts
    )
    return (
        f"---\nlicense: apache-2.0\npretty_name: {dataset.name}\nconfigs:\n{configs}---\n\n"
        f"# {dataset.name}\n\n{dataset.description}\n\n"
        f"Synthetic clips (FLAC, {SAMPLING_RATE} Hz mono, at most {MAX_SECONDS} s): words "
        f"spoken by espeak-ng {tools['espeak-ng']}, tones and noises from SoX {tools['sox']}, "
        "generated by `harness/tasks/demo/sounds.py` "
        f"(generator version {GENERATOR_VERSION}) and written by "
        "`harness/tasks/demo/audio.py` (data "
        f"seed {DATA_SEED}, task index {dataset.index}). {sizes}. "
        "See `../SOURCE.md` to reproduce.\n"
    )


def write_dataset(out_dir: Path, dataset: AudioDataset) -> Path:
    """Write one dataset's folder (README and one parquet file per config and split)."""
    folder = out_dir / dataset.name
    for config, parts in dataset.parts.items():
        for split, rows, features in parts:
            path = folder / data_path(config, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            _table(rows, features).to_parquet(str(path))
    (folder / "README.md").write_text(_readme(dataset), encoding="utf-8")
    return folder


def _table(rows: list[Row], features: datasets.Features) -> datasets.Dataset:
    """The rows as a dataset of ``features``. Audio cells are stored as they are: cast from
    plain ``{bytes, path}`` structs, since ``datasets`` encodes an ``Audio`` value through
    torchcodec (not installed)."""
    stored = datasets.Features(
        {
            name: AUDIO_STORAGE if isinstance(f, datasets.Audio) else f
            for name, f in features.items()
        }
    )
    return datasets.Dataset.from_list(rows, features=stored).cast(features)


def audio_datasets() -> list[AudioDataset]:
    """Every audio demo dataset."""
    return [
        retrieval_dataset("DemoAudioA2TRetrieval", A2T_INDEX, audio_queries=True),
        retrieval_dataset("DemoAudioT2ARetrieval", T2A_INDEX, audio_queries=False),
        classification_dataset(),
    ]


def build_audio(out_dir: Path) -> None:
    """Write the audio demo datasets under ``out_dir`` (espeak-ng and sox must be installed)."""
    if missing_tools():
        raise RuntimeError(
            f"the audio demo needs {' and '.join(missing_tools())}: install them "
            "(apt-get install espeak-ng sox)"
        )
    for dataset in audio_datasets():
        write_dataset(Path(out_dir), dataset)
