"""Train the small demo CLIP that ``make demo`` evaluates, on freshly generated shape scenes.

Usage (from the repository root, about 8 minutes on 2 CPU cores):

    python scripts/train_demo_clip.py [--out harness/model_adapters/demo_clip] [--steps N]

Every step draws new TRAIN scenes and renderings from seeds of the form
``(TRAIN_SEED, step, ...)``. The test data (``harness/tasks/demo/build.py``) uses scene seeds
``(DATA_SEED, task)`` and rendering seeds ``(DATA_SEED, task, scene, rendering)``, so no training
rendering is a test rendering; captions may recur, since the caption space is small.
The tokenizer is a word-level one over the fixed caption vocabulary (deterministic, untrained).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    PreTrainedTokenizerFast,
)

from harness.tasks.demo.shapes import GENERATOR_VERSION, Scene, render, sample_scenes, vocabulary
from harness.tasks.demo.training import save_trained, warmup_cosine, word_level_tokenizer

TRAIN_SEED = 31337
TORCH_SEED = 0
IMAGE_SIZE = 64
MAX_TOKENS = 16
STEPS = 1500
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.05
WARMUP_STEPS = 100
SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "harness" / "model_adapters" / "demo_clip"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A lower-casing whitespace word-level tokenizer over the caption vocabulary.

    Ids: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3, then the words in vocabulary order.
    Every sequence is ``<bos> words <eos>``.
    """
    return word_level_tokenizer(vocabulary(), SPECIAL_TOKENS, MAX_TOKENS)


def build_image_processor() -> CLIPImageProcessorPil:
    """CLIP's preprocessing (OpenAI mean and std) at the scenes' own size."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )


def build_config(tokenizer: PreTrainedTokenizerFast) -> CLIPConfig:
    """A small CLIP whose text special-token ids are the tokenizer's (for EOS pooling)."""
    tower = {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
    }
    text = {
        **tower,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": MAX_TOKENS,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {**tower, "image_size": IMAGE_SIZE, "patch_size": 8}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=64)


def train_batch(step: int, batch_size: int) -> tuple[list[Scene], list[Image.Image]]:
    """The scenes (pairwise distinct layouts) and renderings of one training step."""
    scenes = sample_scenes(batch_size, (TRAIN_SEED, step))
    images = [
        render(scene, size=IMAGE_SIZE, seed=(TRAIN_SEED, step, k)) for k, scene in enumerate(scenes)
    ]
    return scenes, images


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    return warmup_cosine(step, steps, peak=LEARNING_RATE, warmup=WARMUP_STEPS)


def train(
    model: CLIPModel,
    tokenizer: PreTrainedTokenizerFast,
    processor: CLIPImageProcessorPil,
    steps: int,
    batch_size: int,
) -> list[float]:
    """Train with CLIP's symmetric contrastive loss; return the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    model.train()
    losses = []
    for step in range(steps):
        scenes, images = train_batch(step, batch_size)
        text = tokenizer([s.caption for s in scenes], padding=True, return_tensors="pt")
        pixels = processor(images, return_tensors="pt")["pixel_values"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        loss = model(**text, pixel_values=pixels, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    return losses


def training_notes(
    steps: int,
    batch_size: int,
    parameters: int,
    losses: list[float],
    seconds: float,
    weights_sha256: str,
) -> str:
    """The TRAINING.md that records how the saved weights were made."""
    final = sum(losses[-50:]) / len(losses[-50:])
    return f"""# demo_clip: how these weights were made

Command (repository root; the script sets `torch.set_num_threads(2)`):

    python scripts/train_demo_clip.py --steps {steps} --batch-size {batch_size}

- Data: scenes of `harness/tasks/demo/shapes.py` (generator version {GENERATOR_VERSION}),
  fresh every step: `sample_scenes({batch_size}, (TRAIN_SEED, step))`, rendered with seeds
  `(TRAIN_SEED, step, k)`, TRAIN_SEED = {TRAIN_SEED}. The test datasets use other seeds
  (see `harness/tasks/demo/data/SOURCE.md`); no test rendering is trained on.
- Model: `CLIPModel`, {parameters:,} parameters, float32 safetensors. Vision: {IMAGE_SIZE}px,
  patch 8, hidden 128, MLP 256, 3 layers, 4 heads. Text: word-level tokenizer over the
  {len(vocabulary())} caption words plus 4 special tokens, hidden 128, MLP 256, 3 layers,
  4 heads, {MAX_TOKENS} positions. Projection 64.
- Loss: CLIP's symmetric contrastive (InfoNCE) loss with learned temperature.
- Optimiser: AdamW, lr {LEARNING_RATE}, weight decay {WEIGHT_DECAY}, {WARMUP_STEPS} warm-up steps,
  then cosine decay to zero. Torch seed {TORCH_SEED}.
- Steps: {steps} of batch {batch_size}.
- Wall time: {seconds / 60:.1f} minutes on 2 CPU cores.
- Final loss (mean of the last 50 steps): {final:.4f}.
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
    tokenizer = build_tokenizer()
    processor = build_image_processor()
    model = CLIPModel(build_config(tokenizer))
    start = time.perf_counter()
    losses = train(model, tokenizer, processor, args.steps, args.batch_size)
    seconds = time.perf_counter() - start

    parameters, digest = save_trained(args.out, model, tokenizer, processor)
    notes = training_notes(args.steps, args.batch_size, parameters, losses, seconds, digest)
    (args.out / "TRAINING.md").write_text(notes, encoding="utf-8")
    print(f"saved to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
