"""What the demo models' training scripts share: the word-level tokenizer, the schedule, the
contrastive loss and saving the trained model."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast


def word_level_tokenizer(
    words: Sequence[str],
    special_tokens: Mapping[str, str],
    max_tokens: int,
    *,
    eos_last: bool = False,
) -> PreTrainedTokenizerFast:
    """A lower-casing whitespace word-level tokenizer: the special tokens in their order, then
    ``words``; every sequence is ``bos words eos``. Built from a fixed vocabulary, so it is the
    same on every run (a trained BPE breaks ties in hash order). ``eos_last`` gives the eos
    token the highest id instead (X-CLIP's text tower pools at the highest id, as CLIP's first
    checkpoints did)."""
    eos = special_tokens["eos_token"]
    specials = [t for t in special_tokens.values() if not (eos_last and t == eos)]
    tokens = [*specials, *words, *([eos] if eos_last else [])]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special_tokens["unk_token"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    bos = special_tokens["bos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_tokens,
        model_input_names=["input_ids", "attention_mask"],
        **special_tokens,
    )


def warmup_cosine(step: int, steps: int, *, peak: float, warmup: int) -> float:
    """The learning rate at ``step``: linear warm-up to ``peak``, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def contrastive_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy of ``logits`` (inputs by texts) against the positives
    ``targets`` (1 where a text describes an input), spread evenly over each row's positives
    (CLIP's loss when each input has one positive text)."""
    forward = -(targets / targets.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1)
    backward = -(targets.T / targets.sum(0)[:, None] * logits.T.log_softmax(1)).sum(1)
    return (forward.mean() + backward.mean()) / 2


def save_trained(out: Path, model: torch.nn.Module, *companions: Any) -> tuple[int, str]:
    """Save the trained ``model`` (in eval mode) and its companions (tokenizer, processor...)
    with ``save_pretrained`` into ``out``; its parameter count and the sha256 of its weights."""
    model.eval()
    for part in (model, *companions):
        part.save_pretrained(out)
    parameters = sum(p.numel() for p in model.parameters())
    return parameters, hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
