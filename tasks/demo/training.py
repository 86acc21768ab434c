"""What the demo models' training scripts share: the word-level tokenizer and the schedule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast


def word_level_tokenizer(
    words: Sequence[str], special_tokens: Mapping[str, str], max_tokens: int
) -> PreTrainedTokenizerFast:
    """A lower-casing whitespace word-level tokenizer: the special tokens in their order, then
    ``words``; every sequence is ``bos words eos``. Built from a fixed vocabulary, so it is the
    same on every run (a trained BPE breaks ties in hash order)."""
    tokens = [*special_tokens.values(), *words]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special_tokens["unk_token"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    bos, eos = special_tokens["bos_token"], special_tokens["eos_token"]
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
