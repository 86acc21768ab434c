"""Builders for tiny, randomly initialised MLLM embedders saved with ``save_pretrained``: a
LLaVA-NeXT model shaped like E5-V (a CLIP vision tower, a Llama language model, Llama-3's
special tokens) and a GME-style Qwen2-VL model.

Deterministic: fixed seeds and a word-level tokenizer built from a fixed vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
    PreTrainedTokenizerFast,
)

from tests.tiny_models import HIDDEN, SEED, WORDS, build_tiny_qwen2_vl

# The vision tower's crop and patch sides: a crop is 2 x 2 patches.
CROP = 28
PATCH = 14
# The crops an image may be cut into (height, width), as E5-V's [[336, 672], ...] in miniature.
GRID_PINPOINTS = [[CROP, 2 * CROP], [2 * CROP, CROP], [2 * CROP, 2 * CROP]]
LLAMA3_SPECIALS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<image>",
    "<pad>",
    "<unk>",
)
_E5V_WORDS = """
user assistant summary above sentence image in one word : modify this with describe modified
[ ] [/ inst "
"""
VOCAB_SIZE = 160


def e5v_tokenizer() -> PreTrainedTokenizerFast:
    """A lower-casing word-level tokenizer with Llama-3's special tokens and E5-V's ``<image>``
    token; like Llama-3's, it starts every text with ``<|begin_of_text|>``."""
    words = dict.fromkeys([*LLAMA3_SPECIALS, *WORDS, *_E5V_WORDS.split()])
    vocab = {token: index for index, token in enumerate(words)}
    assert len(vocab) <= VOCAB_SIZE
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    bos = "<|begin_of_text|>"
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token="<|eot_id|>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=list(LLAMA3_SPECIALS[1:6]),
        model_max_length=4096,
    )


def build_tiny_e5v(directory: str | Path) -> Path:
    """Save a tiny random ``LlavaNextForConditionalGeneration`` with its tokenizer and a
    ``LlavaNextProcessor`` (PIL image processor); return the directory."""
    tokenizer = e5v_tokenizer()
    config = LlavaNextConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": CROP,
            "patch_size": PATCH,
            "projection_dim": HIDDEN,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": VOCAB_SIZE,
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        image_token_index=LLAMA3_SPECIALS.index("<image>"),
        image_grid_pinpoints=GRID_PINPOINTS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(SEED)
    model = LlavaNextForConditionalGeneration(config)
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": CROP},
        crop_size={"height": CROP, "width": CROP},
        image_grid_pinpoints=GRID_PINPOINTS,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    directory = Path(directory)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny_gme(directory: str | Path) -> Path:
    """Save a tiny random Qwen2-VL model (GME's architecture); return the directory."""
    return build_tiny_qwen2_vl(directory)
