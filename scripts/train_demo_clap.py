"""Train the small demo CLAP that ``make demo`` evaluates on the audio demo tasks.

Usage (from the repository root, about 7 minutes on 2 CPU cores; needs espeak-ng and sox):

    python scripts/train_demo_clap.py [--out harness/model_adapters/demo_clap] [--steps N]

The training clips are ``sample_sound(caption, (TRAIN_SEED, c, k))`` for clip ``k`` of caption
``c``; the test clips (``harness/tasks/demo/audio.py``) use seeds ``(DATA_SEED, task, ...)``, and a
training clip synthesised by the same commands as a test clip is dropped, so no test clip is
trained on. A clip's text is its caption ("a woman saying left") or its class label ("someone
saying left"), drawn at random; the contrastive loss counts every text of the batch that
describes a clip as one of its positives. The tokenizer is a word-level one over the fixed
vocabulary (deterministic, untrained).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, PreTrainedTokenizerFast

from harness.tasks.demo.audio import demo_sounds
from harness.tasks.demo.sounds import (
    GENERATOR_VERSION,
    SAMPLING_RATE,
    Sound,
    captions,
    sample_sound,
    synthesize,
    vocabulary,
)
from harness.tasks.demo.training import (
    contrastive_loss,
    save_trained,
    warmup_cosine,
    word_level_tokenizer,
)

TRAIN_SEED = 31337
TORCH_SEED = 0
CLIPS_PER_CAPTION = 40
MAX_TOKENS = 12
MEL_BINS = 32
STEPS = 600
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.05
WARMUP_STEPS = 50
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "harness" / "model_adapters" / "demo_clap"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A lower-casing whitespace word-level tokenizer over the captions' and labels' words.

    Ids as RoBERTa's (ClapTextModel's) defaults: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>``
    3, then the words in vocabulary order. Every sequence is ``<s> words </s>``.
    """
    return word_level_tokenizer(vocabulary(), SPECIAL_TOKENS, MAX_TOKENS)


def build_feature_extractor() -> ClapFeatureExtractor:
    """Log-mel features of a 1 s window at the clips' own 16 kHz (10 ms hop, 32 mel bins);
    shorter clips are repeat-padded (``rand_trunc``: never the random fusion crops)."""
    return ClapFeatureExtractor(
        feature_size=MEL_BINS,
        sampling_rate=SAMPLING_RATE,
        hop_length=160,
        max_length_s=1,
        fft_window_size=400,
        frequency_min=50,
        frequency_max=SAMPLING_RATE // 2,
        truncation="rand_trunc",
        padding="repeatpad",
    )


def build_config(tokenizer: PreTrainedTokenizerFast) -> ClapConfig:
    """A small CLAP: a 3-stage HTSAT audio tower on a 64x64 spectrogram image, a 2-layer text
    tower whose special-token ids are the tokenizer's."""
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": MAX_TOKENS + 2,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    audio = {
        "num_mel_bins": MEL_BINS,
        "spec_size": 64,
        "patch_size": 4,
        "patch_stride": (4, 4),
        "window_size": 4,
        "depths": (1, 1, 2),
        "num_attention_heads": (2, 4, 8),
        "patch_embeds_hidden_size": 32,
        "hidden_size": 128,
        "num_hidden_layers": 3,
    }
    return ClapConfig(text_config=text, audio_config=audio, projection_dim=64)


def training_sounds(per_caption: int) -> list[Sound]:
    """``per_caption`` training clips of every caption, none synthesised like a test clip."""
    test_sources = {sound.source for sound in demo_sounds()}
    sounds = (
        sample_sound(caption, (TRAIN_SEED, c, k))
        for c, caption in enumerate(captions())
        for k in range(per_caption)
    )
    return [sound for sound in sounds if sound.source not in test_sources]


def featurise(sounds: Sequence[Sound], extractor: ClapFeatureExtractor) -> torch.Tensor:
    """The clips synthesised and turned into the extractor's input features."""
    waveforms = [synthesize(sound).astype(np.float32) / 32768 for sound in sounds]
    features = extractor(waveforms, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    return features["input_features"]


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    return warmup_cosine(step, steps, peak=LEARNING_RATE, warmup=WARMUP_STEPS)


def batch_texts(sounds: Sequence[Sound], rng: np.random.Generator) -> list[str]:
    """Each clip's caption or class label, drawn at random."""
    return [sound.label if rng.random() < 0.5 else sound.caption for sound in sounds]


def positives(sounds: Sequence[Sound], texts: Sequence[str]) -> torch.Tensor:
    """``[i, j]`` is 1 where text ``j`` describes clip ``i`` (its caption or its label)."""
    return torch.tensor(
        [[float(text in (sound.caption, sound.label)) for text in texts] for sound in sounds]
    )


def train(
    model: ClapModel,
    tokenizer: PreTrainedTokenizerFast,
    sounds: Sequence[Sound],
    features: torch.Tensor,
    steps: int,
    batch_size: int,
) -> list[float]:
    """Train on random batches of the clips; return the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    rng = np.random.default_rng(TRAIN_SEED)
    model.train()
    losses = []
    for step in range(steps):
        chosen = rng.choice(len(sounds), size=batch_size, replace=False)
        batch = [sounds[k] for k in chosen]
        texts = batch_texts(batch, rng)
        text = tokenizer(texts, padding=True, return_tensors="pt")
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        audio = model.get_audio_features(input_features=features[chosen]).pooler_output
        caption = model.get_text_features(**text).pooler_output
        logits = model.logit_scale_a.exp() * audio @ caption.T
        loss = contrastive_loss(logits, positives(batch, texts))
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
    return f"""# demo_clap: how these weights were made

Command (repository root; the script sets `torch.set_num_threads(2)`):

    python scripts/train_demo_clap.py --steps {steps} --batch-size {batch_size}

- Data: {n_clips} clips of `harness/tasks/demo/sounds.py` (generator version {GENERATOR_VERSION}),
  `sample_sound(caption, (TRAIN_SEED, c, k))` for {CLIPS_PER_CAPTION} clips `k` of each of the
  {len(captions())} captions `c`, TRAIN_SEED = {TRAIN_SEED}, less any clip synthesised like a
  test clip (see `harness/tasks/demo/data/SOURCE.md`). Each clip's text is its caption or its class
  label, drawn at random every step.
- Model: `ClapModel`, {parameters:,} parameters, float32 safetensors. Audio: log-mel features
  ({MEL_BINS} bins, 16 kHz, 10 ms hop, 1 s window, repeat-padded), HTSAT on a 64x64
  spectrogram image, patch 4, window 4, depths 1-1-2, width 32-64-128. Text: word-level
  tokenizer over the {len(vocabulary())} words plus 4 special tokens, hidden 128, MLP 256,
  2 layers, 4 heads. Projection 64.
- Loss: symmetric contrastive (InfoNCE) loss with CLAP's learned audio temperature, every text
  of the batch that describes a clip (its caption or its label) counting as a positive.
- Optimiser: AdamW, lr {LEARNING_RATE}, weight decay {WEIGHT_DECAY}, {WARMUP_STEPS} warm-up steps,
  then cosine decay to zero. Torch seed {TORCH_SEED}.
- Steps: {steps} of batch {batch_size}.
- Wall time: {seconds / 60:.1f} minutes on 2 CPU cores (clip synthesis included).
- Final loss (mean of the last 25 steps): {final:.4f}.
- `model.safetensors` sha256: `{weights_sha256}`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Train and save the model, tokenizer, feature extractor and TRAINING.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    torch.manual_seed(TORCH_SEED)
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    extractor = build_feature_extractor()
    sounds = training_sounds(CLIPS_PER_CAPTION)
    features = featurise(sounds, extractor)
    print(f"{len(sounds)} training clips in {time.perf_counter() - start:.0f} s", flush=True)
    model = ClapModel(build_config(tokenizer))
    losses = train(model, tokenizer, sounds, features, args.steps, args.batch_size)
    seconds = time.perf_counter() - start

    parameters, digest = save_trained(args.out, model, tokenizer, extractor)
    notes = training_notes(
        args.steps, args.batch_size, len(sounds), parameters, losses, seconds, digest
    )
    (args.out / "TRAINING.md").write_text(notes, encoding="utf-8")
    print(f"saved to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
