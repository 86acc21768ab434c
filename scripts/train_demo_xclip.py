"""Train the small demo X-CLIP that ``make demo`` evaluates on the video demo tasks.

Usage (from the repository root, a few minutes on 2 CPU cores):

    python scripts/train_demo_xclip.py [--out model_adapters/demo_xclip] [--steps N]

The training clips are every clip description of ``tasks/demo/clips.py`` (``all_clips()``)
rendered ``RENDERS`` times, render ``k`` of a description with seed ``(TRAIN_SEED, k, p)``,
where ``p`` numbers the description and its time-reversed twin together: the twins of a render
are the same frames in opposite orders. The test clips (``tasks/demo/video.py``) use seeds that
start with ``DATA_SEED``, never ``TRAIN_SEED``, so no test clip is trained on. Each clip is
encoded to MP4 and decoded again, so the model trains on the frames the adapter sees.

A batch is ``BATCH_SIZE / 2`` random clips and their twins, so that only the order of the
frames tells half of the pairs apart. A clip's text is its caption ("a red circle moves to the
left") or its class label ("moves left"), drawn at random; the contrastive loss counts every
text of the batch that describes a clip as one of its positives. The tokenizer is a word-level
one over the fixed vocabulary (deterministic, untrained), its end-of-text token last (X-CLIP's
text tower pools at the highest token id).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast, VideoMAEImageProcessorPil, XCLIPConfig, XCLIPModel

from harness.core.video import FrameSampling, Video
from tasks.demo.build import DATA_SEED
from tasks.demo.clips import (
    GENERATOR_VERSION,
    N_FRAMES,
    SIZE,
    Clip,
    all_clips,
    rendered,
    vocabulary,
)
from tasks.demo.training import contrastive_loss, warmup_cosine, word_level_tokenizer

TRAIN_SEED = 2718
TORCH_SEED = 0
RENDERS = 6
# Frames the model takes, evenly spaced over a clip's N_FRAMES (as the adapter samples them).
NUM_FRAMES = 4
MAX_TOKENS = 12
PATCH_SIZE = 16
HIDDEN = 64
STEPS = 600
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.05
WARMUP_STEPS = 50
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "eos_token": "</s>",
}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "model_adapters" / "demo_xclip"


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


def training_set(renders: int) -> TrainingSet:
    """Every clip description rendered ``renders`` times (twins with the same seed), encoded
    and decoded as the adapter decodes them."""
    descriptions = all_clips()
    index = {clip: i for i, clip in enumerate(descriptions)}
    clips: list[Clip] = []
    frames: list[np.ndarray] = []
    twins: list[int] = []
    sampling = FrameSampling(num_frames=NUM_FRAMES)
    for k in range(renders):
        for i, clip in enumerate(descriptions):
            twin = index[clip.reversed()]
            seed = (TRAIN_SEED, k, min(i, twin))
            clips.append(clip)
            frames.append(Video(rendered(clip, seed).mp4()).frames(sampling))
            twins.append(k * len(descriptions) + twin)
    return TrainingSet(clips, np.stack(frames), np.array(twins))


def batch_texts(clips: Sequence[Clip], rng: np.random.Generator) -> list[str]:
    """Each clip's caption or class label, drawn at random."""
    return [clip.label if rng.random() < 0.5 else clip.caption for clip in clips]


def positives(clips: Sequence[Clip], texts: Sequence[str]) -> torch.Tensor:
    """``[i, j]`` is 1 where text ``j`` describes clip ``i`` (its caption or its label)."""
    return torch.tensor(
        [[float(text in (clip.caption, clip.label)) for text in texts] for clip in clips]
    )


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    return warmup_cosine(step, steps, peak=LEARNING_RATE, warmup=WARMUP_STEPS)


def train(
    model: XCLIPModel,
    tokenizer: PreTrainedTokenizerFast,
    processor: VideoMAEImageProcessorPil,
    data: TrainingSet,
    steps: int,
    batch_size: int,
) -> list[float]:
    """Train on batches of random clips and their twins; return the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    rng = np.random.default_rng(TRAIN_SEED)
    model.train()
    losses = []
    for step in range(steps):
        chosen = rng.choice(len(data.clips), size=batch_size // 2, replace=False)
        chosen = np.concatenate([chosen, data.twins[chosen]])
        clips = [data.clips[k] for k in chosen]
        texts = batch_texts(clips, rng)
        text = tokenizer(texts, padding=True, return_tensors="pt")
        pixels = processor(list(data.frames[chosen]), return_tensors="pt")["pixel_values"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        video = model.get_video_features(pixel_values=pixels).pooler_output
        caption = model.get_text_features(**text).pooler_output
        video = video / video.norm(dim=-1, keepdim=True)
        caption = caption / caption.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * video @ caption.T
        loss = contrastive_loss(logits, positives(clips, texts))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    return losses


def training_notes(
    steps: int,
    batch_size: int,
    n_clips: int,
    parameters: int,
    losses: list[float],
    seconds: float,
    weights_sha256: str,
) -> str:
    """The TRAINING.md that records how the saved weights were made."""
    final = sum(losses[-25:]) / len(losses[-25:])
    return f"""# demo_xclip: how these weights were made

Command (repository root; the script sets `torch.set_num_threads(2)`):

    python scripts/train_demo_xclip.py --steps {steps} --batch-size {batch_size}

- Data: {n_clips} clips of `tasks/demo/clips.py` (generator version {GENERATOR_VERSION}): each
  of the {len(all_clips())} clip descriptions rendered {RENDERS} times, render `k` with seed
  `(TRAIN_SEED, k, p)`, `p` shared by a description and its time-reversed twin (the same frames
  in opposite orders), TRAIN_SEED = {TRAIN_SEED}; the test clips' seeds start with DATA_SEED =
  {DATA_SEED}. Every clip is encoded to MP4 and decoded again ({N_FRAMES} frames of
  {SIZE}x{SIZE}). Each clip's text is its caption or its class label, drawn at random every
  step; a batch is {batch_size // 2} random clips and their twins.
- Model: `XCLIPModel`, {parameters:,} parameters, float32 safetensors. Frames: VideoMAE's
  processor at {SIZE} pixels (scaled to [-1, 1]). Vision: {PATCH_SIZE}-pixel patches, hidden
  {HIDDEN}, MLP {2 * HIDDEN}, 2 layers, 4 heads, per frame; multi-frame integration transformer
  over {NUM_FRAMES} frames evenly spaced over the clip: 1 layer. Text: word-level tokenizer over the {len(vocabulary())}
  words plus 4 special tokens (end-of-text last), hidden {HIDDEN}, 2 layers, 4 heads. Projection
  {HIDDEN}. The video-conditioned text prompt generator is not trained (the harness, like mteb,
  embeds texts without it).
- Loss: symmetric contrastive (InfoNCE) loss on the L2-normalised `get_video_features` and
  `get_text_features` with X-CLIP's learned temperature, every text of the batch that describes
  a clip (its caption or its label) counting as a positive.
- Optimiser: AdamW, lr {LEARNING_RATE}, weight decay {WEIGHT_DECAY}, {WARMUP_STEPS} warm-up steps,
  then cosine decay to zero. Torch seed {TORCH_SEED}.
- Steps: {steps} of batch {batch_size}.
- Wall time: {seconds / 60:.1f} minutes on 2 CPU cores (rendering and encoding included).
- Final loss (mean of the last 25 steps): {final:.4f}.
- `model.safetensors` sha256: `{weights_sha256}`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Train and save the model, tokenizer, image processor and TRAINING.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    torch.manual_seed(TORCH_SEED)
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    processor = build_image_processor()
    data = training_set(RENDERS)
    print(f"{len(data.clips)} training clips in {time.perf_counter() - start:.0f} s", flush=True)
    model = XCLIPModel(build_config(tokenizer))
    losses = train(model, tokenizer, processor, data, args.steps, args.batch_size)
    seconds = time.perf_counter() - start

    model.eval()
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    parameters = sum(p.numel() for p in model.parameters())
    digest = hashlib.sha256((args.out / "model.safetensors").read_bytes()).hexdigest()
    notes = training_notes(
        args.steps, args.batch_size, len(data.clips), parameters, losses, seconds, digest
    )
    (args.out / "TRAINING.md").write_text(notes, encoding="utf-8")
    print(f"saved to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
