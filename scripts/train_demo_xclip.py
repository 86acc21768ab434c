"""Train the small demo X-CLIP that ``make demo`` evaluates on the video demo tasks.

Usage (from the repository root; a few minutes on 2 free CPU cores, longer on a shared machine,
see the wall time in harness/model_adapters/demo_xclip/TRAINING.md):

    python scripts/train_demo_xclip.py [--out harness/model_adapters/demo_xclip]

The training clips are every clip description of ``harness/tasks/demo/clips.py`` (``all_clips()``)
rendered once per render ``k`` of a phase, with seed ``(TRAIN_SEED, k, p)``, where ``p``
numbers the description and its time-reversed twin together: the twins of a render are the same
frames in opposite orders. The test clips (``harness/tasks/demo/video.py``) use seeds that start
with ``DATA_SEED``, never ``TRAIN_SEED``, so no test clip is trained on. Each clip is encoded to MP4
and decoded again, so the model trains on the frames the adapter sees.

A batch is ``BATCH_SIZE / 2`` random clips and their twins, so that only the order of the
frames tells half of the pairs apart. Training runs in phases (``PHASES``), each with a fresh
optimiser: contrastive from random init, then with the twin loss added (each clip told from its
twin), which teaches the direction of time, last on fresh renders. A clip's text is its
caption ("a red circle moves to the left") or its class label ("moves left"), drawn at random;
the contrastive loss counts every text of the batch that describes a clip as one of its
positives. The tokenizer is a word-level one over the fixed vocabulary (deterministic,
untrained), its end-of-text token last (X-CLIP's text tower pools at the highest token id).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast, VideoMAEImageProcessorPil, XCLIPConfig, XCLIPModel

from harness.core.video import FrameSampling, Video
from harness.tasks.demo.build import DATA_SEED
from harness.tasks.demo.clips import (
    GENERATOR_VERSION,
    N_FRAMES,
    SIZE,
    Clip,
    all_clips,
    rendered,
    vocabulary,
)
from harness.tasks.demo.training import (
    contrastive_loss,
    save_trained,
    warmup_cosine,
    word_level_tokenizer,
)

TRAIN_SEED = 2718
TORCH_SEED = 0
# Frames the model takes, evenly spaced over a clip's N_FRAMES (as the adapter samples them).
NUM_FRAMES = 4
MAX_TOKENS = 12
PATCH_SIZE = 16
HIDDEN = 64
BATCH_SIZE = 32
WEIGHT_DECAY = 0.05
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "eos_token": "</s>",
}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "harness" / "model_adapters" / "demo_xclip"


@dataclass(frozen=True)
class TrainingSet:
    """The training clips, their decoded frames (uint8 ``(n, T, H, W, 3)``) and, for each clip,
    the index of its time-reversed twin."""

    clips: list[Clip]
    frames: np.ndarray
    twins: np.ndarray


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A lower-casing whitespace word-level tokenizer over the captions' and labels' words:
    ``<s>`` 0, ``<pad>`` 1, ``<unk>`` 2, the words, then ``</s>``; every sequence is
    ``<s> words </s>``."""
    return word_level_tokenizer(vocabulary(), SPECIAL_TOKENS, MAX_TOKENS, eos_last=True)


def build_image_processor() -> VideoMAEImageProcessorPil:
    """X-CLIP's frame processor (VideoMAE's) at the clips' own size: frames are only scaled to
    [-1, 1]."""
    return VideoMAEImageProcessorPil(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    )


def build_config(tokenizer: PreTrainedTokenizerFast) -> XCLIPConfig:
    """A small X-CLIP: a 2-layer vision transformer on 16-pixel patches of every frame, a
    1-layer multi-frame integration transformer over the frames, a 2-layer text tower whose
    special-token ids are the tokenizer's."""
    tower = {
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    }
    text = {
        **tower,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": MAX_TOKENS + 2,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {
        **tower,
        "image_size": SIZE,
        "patch_size": PATCH_SIZE,
        "num_frames": NUM_FRAMES,
        "mit_hidden_size": HIDDEN,
        "mit_intermediate_size": 2 * HIDDEN,
        "mit_num_hidden_layers": 1,
        "mit_num_attention_heads": 4,
    }
    return XCLIPConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=HIDDEN,
        prompt_layers=1,
        prompt_num_attention_heads=4,
    )


def training_set(renders: range) -> TrainingSet:
    """Every clip description rendered once for each ``k`` in ``renders`` (twins with the same
    seed), encoded and decoded as the adapter decodes them."""
    descriptions = all_clips()
    index = {clip: i for i, clip in enumerate(descriptions)}
    clips: list[Clip] = []
    frames: list[np.ndarray] = []
    twins: list[int] = []
    sampling = FrameSampling(num_frames=NUM_FRAMES)
    for n, k in enumerate(renders):
        for i, clip in enumerate(descriptions):
            twin = index[clip.reversed()]
            seed = (TRAIN_SEED, k, min(i, twin))
            clips.append(clip)
            frames.append(Video(rendered(clip, seed).mp4()).frames(sampling))
            twins.append(n * len(descriptions) + twin)
    return TrainingSet(clips, np.stack(frames), np.array(twins))


def batch_texts(clips: Sequence[Clip], rng: np.random.Generator) -> list[str]:
    """Each clip's caption or class label, drawn at random."""
    return [clip.label if rng.random() < 0.5 else clip.caption for clip in clips]


def positives(clips: Sequence[Clip], texts: Sequence[str]) -> torch.Tensor:
    """``[i, j]`` is 1 where text ``j`` describes clip ``i`` (its caption or its label)."""
    return torch.tensor(
        [[float(text in (clip.caption, clip.label)) for text in texts] for clip in clips]
    )


@dataclass(frozen=True)
class Phase:
    """One stretch of training on the clips of ``renders`` (see :func:`training_set`), with its
    own optimiser and schedule (linear warm-up to ``peak_lr``, then cosine decay to zero);
    ``twin_weight`` weights the twin loss, and ``seed`` seeds the batches and texts."""

    renders: range
    steps: int
    peak_lr: float
    warmup: int
    twin_weight: float
    seed: int | tuple[int, ...]


# Contrastive training from random init, then the same with the twin loss added, from where the
# first phase ends (a fresh optimiser): the first phase learns colours, shapes and kinds of
# event, the second the direction of time.
PHASES = (
    Phase(range(6), steps=1000, peak_lr=1e-3, warmup=50, twin_weight=0.0, seed=TRAIN_SEED),
    Phase(range(6), steps=500, peak_lr=5e-4, warmup=20, twin_weight=1.0, seed=(TRAIN_SEED, 2)),
    Phase(range(6, 12), steps=500, peak_lr=5e-4, warmup=20, twin_weight=2.0, seed=(TRAIN_SEED, 3)),
)


def twin_loss(video: torch.Tensor, captions: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """How well each clip of a batch laid out as ``[clips, their twins]`` is told from its twin:
    the two-way cross-entropy of each clip against its twin's caption and of each caption
    against the twin clip (unit vectors in, ``scale`` the temperature)."""
    twin = torch.arange(len(video)).roll(len(video) // 2)
    own = scale * (video * captions).sum(-1)
    against_caption = scale * (video * captions[twin]).sum(-1)
    against_clip = scale * (video[twin] * captions).sum(-1)
    loss = torch.nn.functional.softplus(against_caption - own)
    return (loss + torch.nn.functional.softplus(against_clip - own)).mean() / 2


def _unit(output: Any) -> torch.Tensor:
    return output.pooler_output / output.pooler_output.norm(dim=-1, keepdim=True)


def train(
    model: XCLIPModel,
    tokenizer: PreTrainedTokenizerFast,
    processor: VideoMAEImageProcessorPil,
    data: TrainingSet,
    phase: Phase,
    batch_size: int,
) -> list[float]:
    """Train on batches of random clips and their twins; return the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=phase.peak_lr, weight_decay=WEIGHT_DECAY)
    rng = np.random.default_rng(phase.seed)
    model.train()
    losses = []
    for step in range(phase.steps):
        chosen = rng.choice(len(data.clips), size=batch_size // 2, replace=False)
        chosen = np.concatenate([chosen, data.twins[chosen]])
        clips = [data.clips[k] for k in chosen]
        texts = batch_texts(clips, rng)
        text = tokenizer(texts, padding=True, return_tensors="pt")
        pixels = processor(list(data.frames[chosen]), return_tensors="pt")["pixel_values"]
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, phase.steps, peak=phase.peak_lr, warmup=phase.warmup)
        video = _unit(model.get_video_features(pixel_values=pixels))
        scale = model.logit_scale.exp()
        logits = scale * video @ _unit(model.get_text_features(**text)).T
        loss = contrastive_loss(logits, positives(clips, texts))
        if phase.twin_weight:
            captions = tokenizer(
                [clip.caption for clip in clips], padding=True, return_tensors="pt"
            )
            caption_vectors = _unit(model.get_text_features(**captions))
            loss = loss + phase.twin_weight * twin_loss(video, caption_vectors, scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == phase.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    return losses


def training_notes(
    n_clips: int, parameters: int, last_losses: list[float], seconds: float, weights_sha256: str
) -> str:
    """The TRAINING.md that records how the saved weights were made."""
    phases = "\n".join(
        f"  {k}. renders {phase.renders.start}-{phase.renders.stop - 1}, {phase.steps} steps, "
        f"peak lr {phase.peak_lr:g}, {phase.warmup} warm-up steps, "
        f"twin-loss weight {phase.twin_weight:g}, batch seed {phase.seed}; loss at the last "
        f"step {loss:.4f}."
        for k, (phase, loss) in enumerate(zip(PHASES, last_losses, strict=True), start=1)
    )
    return f"""# demo_xclip: how these weights were made

Command (repository root; the script sets `torch.set_num_threads(2)`):

    python scripts/train_demo_xclip.py

- Data: {n_clips} clips of `harness/tasks/demo/clips.py` (generator version
  {GENERATOR_VERSION}): each of the {len(all_clips())} clip descriptions rendered once per
  phase's render `k`, with seed `(TRAIN_SEED, k, p)`, `p` shared by a description and its
  time-reversed twin (the same frames in opposite orders), TRAIN_SEED = {TRAIN_SEED}; the test
  clips' seeds start with DATA_SEED = {DATA_SEED}. Every clip is encoded to MP4 and decoded
  again ({N_FRAMES} frames of {SIZE}x{SIZE}), and the model's {NUM_FRAMES} frames are sampled as
  the adapter samples them. Each clip's text is its caption or its class label, drawn at random
  every step; a batch is {BATCH_SIZE // 2} random clips and their twins.
- Model: `XCLIPModel`, {parameters:,} parameters, float32 safetensors. Frames: VideoMAE's
  processor at {SIZE} pixels (scaled to [-1, 1]). Vision: {PATCH_SIZE}-pixel patches, hidden
  {HIDDEN}, MLP {2 * HIDDEN}, 2 layers, 4 heads, per frame; multi-frame integration transformer
  over the {NUM_FRAMES} frames: 1 layer. Text: word-level tokenizer over the
  {len(vocabulary())} words plus 4 special tokens (end-of-text last), hidden {HIDDEN}, 2 layers,
  4 heads. Projection {HIDDEN}. The video-conditioned text prompt generator is not trained (the
  harness, like mteb, embeds texts without it).
- Loss: symmetric contrastive (InfoNCE) loss on the L2-normalised `get_video_features` and
  `get_text_features` with X-CLIP's learned temperature, every text of the batch that describes
  a clip (its caption or its label) counting as a positive; from the second phase on, plus the twin
  loss (each clip against its twin's caption, each caption against the twin clip).
- Optimiser: AdamW, weight decay {WEIGHT_DECAY}, a fresh one per phase, linear warm-up then
  cosine decay to zero. Torch seed {TORCH_SEED}. Phases (batch {BATCH_SIZE}):
{phases}
- Wall time: {seconds / 60:.1f} minutes on 2 CPU cores (rendering and encoding included).
- `model.safetensors` sha256: `{weights_sha256}`.

Runs are not bit-reproducible: two runs agree to the fourth decimal of the loss for about 110
steps, then drift apart in the last float bits (with one thread and MKL's conditional numerical
reproducibility too; deterministic algorithms without oneDNN were too slow to finish). Two runs
scored within about 0.05 of each other on every demo video task, all far above chance.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Train and save the model, tokenizer, image processor and TRAINING.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    torch.manual_seed(TORCH_SEED)
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    processor = build_image_processor()
    model = XCLIPModel(build_config(tokenizer))
    sets: dict[range, TrainingSet] = {}
    last_losses = []
    for phase in PHASES:
        if phase.renders not in sets:
            sets[phase.renders] = training_set(phase.renders)
            print(f"renders {phase.renders} at {time.perf_counter() - start:.0f} s", flush=True)
        data = sets[phase.renders]
        last_losses.append(train(model, tokenizer, processor, data, phase, BATCH_SIZE)[-1])
    seconds = time.perf_counter() - start

    parameters, digest = save_trained(args.out, model, tokenizer, processor)
    n_clips = sum(len(data.clips) for data in sets.values())
    notes = training_notes(n_clips, parameters, last_losses, seconds, digest)
    (args.out / "TRAINING.md").write_text(notes, encoding="utf-8")
    print(f"saved to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
