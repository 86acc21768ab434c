"""Builders for tiny, randomly initialised dual-encoder models saved to a directory.

Every builder is deterministic: fixed seeds and a tokenizer built from a fixed word-level
vocabulary (never a trained BPE, whose ties break in hash order).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipImageProcessorPil,
    SiglipModel,
)
from transformers.image_processing_utils import ImageProcessingMixin

SEED = 1234
IMAGE_SIZE = 32
PATCH_SIZE = 8
HIDDEN = 32
MAX_TOKENS = 16
VOCAB_SIZE = 128

# The fixed vocabulary of the test tokenizers, after their special tokens.
_VOCABULARY = """
a an the of on in with and is are photo picture image drawing cat cats kitten dog dogs puppy bird
fish horse car truck bus plane boat tree flower house road sky sea mat rug table chair red green
blue yellow black white small big two three sits sitting runs running flies stock market crash
man woman child people street park
"""
WORDS = tuple(_VOCABULARY.split())


def _word_level_tokenizer(
    special: dict[str, str], template: str, model_input_names: list[str]
) -> PreTrainedTokenizerFast:
    """A lower-casing whitespace tokenizer over ``WORDS`` with ``special`` tokens first.

    ``special`` maps roles (``pad_token``, ``unk_token``, ...) to token strings; ``template``
    is the single-sequence post-processing template (e.g. ``"<bos> $A <eos>"``).
    """
    specials = list(dict.fromkeys(special.values()))
    vocab = {token: index for index, token in enumerate([*specials, *WORDS])}
    assert len(vocab) <= VOCAB_SIZE
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special["unk_token"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    template_specials = [(t, vocab[t]) for t in specials if t in template.split()]
    backend.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=template_specials
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=MAX_TOKENS,
        model_input_names=model_input_names,
        **special,
    )


def _tower(**extra: object) -> dict[str, object]:
    """The shared size settings of one tiny transformer tower."""
    return {
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        **extra,
    }


def _text_tower(tokenizer: PreTrainedTokenizerFast) -> dict[str, object]:
    """A tiny text tower whose special token ids are the tokenizer's."""
    return _tower(
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def _save(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    processor: ImageProcessingMixin,
    directory: Path,
) -> Path:
    """Save the model, its tokenizer and its image processor side by side."""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny_clip(directory: str | Path) -> Path:
    """Save a tiny random ``CLIPModel`` with its tokenizer and image processor; return the dir.

    The text config's eos id is the tokenizer's, so CLIP pools at the first end-of-text token.
    """
    tokenizer = _word_level_tokenizer(
        {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>"},
        "<bos> $A <eos>",
        ["input_ids", "attention_mask"],
    )
    config = CLIPConfig(
        text_config=_text_tower(tokenizer),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        projection_dim=24,
    )
    torch.manual_seed(SEED)
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return _save(CLIPModel(config), tokenizer, processor, Path(directory))


def build_tiny_siglip(directory: str | Path) -> Path:
    """Save a tiny random ``SiglipModel`` with its tokenizer and image processor; return the dir.

    Like the real SigLIP tokenizer, it appends only an end-of-sequence token, pads with it and
    returns no attention mask.
    """
    tokenizer = _word_level_tokenizer(
        {"pad_token": "</s>", "eos_token": "</s>", "unk_token": "<unk>"},
        "$A </s>",
        ["input_ids"],
    )
    config = SiglipConfig(
        text_config=_text_tower(tokenizer),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
    )
    torch.manual_seed(SEED)
    processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return _save(SiglipModel(config), tokenizer, processor, Path(directory))
