"""Builders for tiny, randomly initialised transformers dual encoders beyond CLIP and SigLIP:
SigLIP 2 (NaFlex), Chinese-CLIP, AltCLIP, ALIGN, MetaCLIP 2, GroupViT, OWL-ViT, AIMv2 and the
generic VisionTextDualEncoderModel.

Each saves the model with ``save_pretrained`` beside a word-level tokenizer (deterministic, see
``tests.tiny_models``) and the PIL image processor class the hub checkpoints of that type use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    Aimv2Config,
    Aimv2Model,
    AlignConfig,
    AlignModel,
    AltCLIPConfig,
    AltCLIPModel,
    BertConfig,
    ChineseCLIPConfig,
    ChineseCLIPImageProcessorPil,
    ChineseCLIPModel,
    CLIPImageProcessorPil,
    EfficientNetImageProcessorPil,
    GroupViTConfig,
    GroupViTModel,
    MetaClip2Config,
    MetaClip2Model,
    OwlViTConfig,
    OwlViTImageProcessorPil,
    OwlViTModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Siglip2Config,
    Siglip2ImageProcessorPil,
    Siglip2Model,
    Siglip2Processor,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
    ViTConfig,
    ViTImageProcessorPil,
)
from transformers.image_processing_utils import ImageProcessingMixin

from tests.tiny_models import (
    IMAGE_SIZE,
    PATCH_SIZE,
    SEED,
    _save,
    _text_tower,
    _tower,
    _word_level_tokenizer,
)

PROJECTION = 24
# SigLIP 2 NaFlex: images are resized to at most this many 16-pixel patches, aspect kept.
SIGLIP2_MAX_PATCHES = 256
SIGLIP2_PATCH_SIZE = 16
SIGLIP2_MAX_TOKENS = 64


def bert_tokenizer() -> PreTrainedTokenizerFast:
    """A BERT-layout tokenizer: [CLS] text [SEP], padded with [PAD]."""
    return _word_level_tokenizer(
        {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"},
        "[CLS] $A [SEP]",
        ["input_ids", "token_type_ids", "attention_mask"],
    )


def _clip_tokenizer() -> PreTrainedTokenizerFast:
    """A CLIP-layout tokenizer: <bos> text <eos>."""
    return _word_level_tokenizer(
        {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>"},
        "<bos> $A <eos>",
        ["input_ids", "attention_mask"],
    )


def _roberta_tokenizer() -> PreTrainedTokenizerFast:
    """An XLM-R-layout tokenizer: <s> text </s>, padded with <pad>."""
    return _word_level_tokenizer(
        {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"},
        "<s> $A </s>",
        ["input_ids", "attention_mask"],
    )


def _clip_processor() -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )


def _vision() -> dict[str, object]:
    return _tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)


def _build(
    directory: str | Path,
    make: Callable[[PreTrainedTokenizerFast], PreTrainedModel],
    tokenizer: PreTrainedTokenizerFast,
    processor: ImageProcessingMixin,
) -> Path:
    """Seed, build the model for ``tokenizer``, save all three; return the directory."""
    torch.manual_seed(SEED)
    return _save(make(tokenizer), tokenizer, processor, Path(directory))


def build_tiny_siglip2(directory: str | Path) -> Path:
    """A tiny SigLIP 2 NaFlex model (``Siglip2Model``) with its patch-based image processor and
    a ``Siglip2Processor``, so that ``AutoProcessor`` (mteb's way in) loads too.

    Patch size, patch budget and text length are the hub checkpoints' (16 px, 256 patches, 64
    tokens), which ``Siglip2Processor`` also applies by default.
    """
    tokenizer = _word_level_tokenizer(
        {"pad_token": "<pad>", "eos_token": "<eos>", "unk_token": "<unk>"},
        "$A <eos>",
        ["input_ids"],
    )
    tokenizer.model_max_length = SIGLIP2_MAX_TOKENS
    image_processor = Siglip2ImageProcessorPil(
        patch_size=SIGLIP2_PATCH_SIZE, max_num_patches=SIGLIP2_MAX_PATCHES
    )

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        text = {**_text_tower(tok), "max_position_embeddings": SIGLIP2_MAX_TOKENS}
        vision = _tower(patch_size=SIGLIP2_PATCH_SIZE, num_patches=SIGLIP2_MAX_PATCHES)
        return Siglip2Model(Siglip2Config(text_config=text, vision_config=vision))

    directory = _build(directory, make, tokenizer, image_processor)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        directory
    )
    return directory


def build_tiny_chinese_clip(directory: str | Path) -> Path:
    """A tiny ``ChineseCLIPModel`` (BERT text tower)."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = ChineseCLIPConfig(
            text_config=_text_tower(tok), vision_config=_vision(), projection_dim=PROJECTION
        )
        return ChineseCLIPModel(config)

    processor = ChineseCLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return _build(directory, make, bert_tokenizer(), processor)


def build_tiny_altclip(directory: str | Path) -> Path:
    """A tiny ``AltCLIPModel`` (XLM-R text tower with a projection)."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        text = {**_text_tower(tok), "project_dim": PROJECTION, "type_vocab_size": 1}
        # XLM-R numbers positions from the pad id (1) + 1: 16 tokens need 18 positions.
        text["max_position_embeddings"] = int(text["max_position_embeddings"]) + 2  # type: ignore[call-overload]
        config = AltCLIPConfig(text_config=text, vision_config=_vision(), projection_dim=PROJECTION)
        return AltCLIPModel(config)

    return _build(directory, make, _roberta_tokenizer(), _clip_processor())


def build_tiny_align(directory: str | Path) -> Path:
    """A tiny ``AlignModel`` (EfficientNet image tower, BERT text tower)."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        # The image embedding is EfficientNet's pooled last stage: 320 channels scaled by the
        # width coefficient (to 32), which the text projection must match.
        vision = {
            "image_size": IMAGE_SIZE,
            "width_coefficient": 0.1,
            "depth_coefficient": 0.1,
            "hidden_dim": 64,
        }
        config = AlignConfig(text_config=_text_tower(tok), vision_config=vision, projection_dim=32)
        return AlignModel(config)

    processor = EfficientNetImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    return _build(directory, make, bert_tokenizer(), processor)


def build_tiny_metaclip_2(directory: str | Path) -> Path:
    """A tiny ``MetaClip2Model`` (CLIP towers, XLM-R-style tokenizer)."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = MetaClip2Config(
            text_config=_text_tower(tok), vision_config=_vision(), projection_dim=PROJECTION
        )
        return MetaClip2Model(config)

    return _build(directory, make, _roberta_tokenizer(), _clip_processor())


def build_tiny_groupvit(directory: str | Path) -> Path:
    """A tiny ``GroupViTModel``."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        vision = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "depths": [1, 1],
            "num_group_tokens": [4, 0],
            "num_output_groups": [4, 4],
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        }
        config = GroupViTConfig(
            text_config=_text_tower(tok),
            vision_config=vision,
            projection_dim=PROJECTION,
            projection_intermediate_dim=PROJECTION,
        )
        return GroupViTModel(config)

    return _build(directory, make, _clip_tokenizer(), _clip_processor())


def build_tiny_owlvit(directory: str | Path) -> Path:
    """A tiny ``OwlViTModel``."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = OwlViTConfig(
            text_config=_text_tower(tok), vision_config=_vision(), projection_dim=PROJECTION
        )
        return OwlViTModel(config)

    processor = OwlViTImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    return _build(directory, make, _clip_tokenizer(), processor)


def build_tiny_aimv2(directory: str | Path) -> Path:
    """A tiny ``Aimv2Model`` (AIMv2 LiT: CLIP-style towers)."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = Aimv2Config(
            text_config=_text_tower(tok), vision_config=_vision(), projection_dim=PROJECTION
        )
        return Aimv2Model(config)

    return _build(directory, make, _clip_tokenizer(), _clip_processor())


def build_tiny_vision_text_dual_encoder(directory: str | Path) -> Path:
    """A tiny ``VisionTextDualEncoderModel`` (ViT and BERT towers), as users assemble and
    train their own."""

    def make(tok: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = VisionTextDualEncoderConfig.from_vision_text_configs(
            ViTConfig.from_dict(_vision()),
            BertConfig.from_dict(_text_tower(tok)),
            projection_dim=PROJECTION,
        )
        return VisionTextDualEncoderModel(config)

    processor = ViTImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return _build(directory, make, bert_tokenizer(), processor)


BUILDERS: dict[str, Callable[[str | Path], Path]] = {
    "siglip2": build_tiny_siglip2,
    "chinese_clip": build_tiny_chinese_clip,
    "altclip": build_tiny_altclip,
    "align": build_tiny_align,
    "metaclip_2": build_tiny_metaclip_2,
    "groupvit": build_tiny_groupvit,
    "owlvit": build_tiny_owlvit,
    "aimv2": build_tiny_aimv2,
    "vision-text-dual-encoder": build_tiny_vision_text_dual_encoder,
}
