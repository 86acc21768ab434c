"""Builders for tiny, randomly initialised models saved to a directory: dual encoders,
Qwen2-VL-family chat models and audio encoders (CLAP, Whisper, wav2vec2, HuBERT).

Every builder is deterministic: fixed seeds and a tokenizer built from a fixed word-level
vocabulary (never a trained BPE, whose ties break in hash order).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    ColPaliConfig,
    ColPaliForRetrieval,
    ColPaliProcessor,
    ColQwen2Config,
    ColQwen2ForRetrieval,
    ColQwen2Processor,
    HubertConfig,
    HubertModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    SiglipConfig,
    SiglipImageProcessorPil,
    SiglipModel,
    VideoMAEImageProcessorPil,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
    XCLIPConfig,
    XCLIPModel,
)
from transformers.feature_extraction_utils import FeatureExtractionMixin
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
    processor: ImageProcessingMixin | FeatureExtractionMixin,
    directory: Path,
) -> Path:
    """Save the model, its tokenizer and its image processor (or feature extractor) side by
    side."""
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


def build_tiny_xclip(directory: str | Path, num_frames: int = 4) -> Path:
    """Save a tiny random ``XCLIPModel`` that takes ``num_frames`` frames of 32 x 32, with its
    tokenizer and VideoMAE image processor (as the hub's X-CLIP checkpoints have); return the
    directory."""
    tokenizer = _word_level_tokenizer(
        {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>"},
        "<bos> $A <eos>",
        ["input_ids", "attention_mask"],
    )
    projection = 24
    vision = _tower(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        num_frames=num_frames,
        mit_hidden_size=projection,
        mit_intermediate_size=2 * projection,
        mit_num_hidden_layers=1,
        mit_num_attention_heads=2,
    )
    config = XCLIPConfig(
        text_config=_text_tower(tokenizer),
        vision_config=vision,
        projection_dim=projection,
        prompt_layers=1,
        prompt_num_attention_heads=2,
    )
    torch.manual_seed(SEED)
    processor = VideoMAEImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return _save(XCLIPModel(config), tokenizer, processor, Path(directory))


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


# Qwen2-VL-style chat models: special tokens, a chat template in the Qwen layout (a default
# system turn, images as <|vision_start|><|image_pad|><|vision_end|>, videos with <|video_pad|>)
# and a vision tower with 14-pixel patches merged 2 x 2, so a 56 x 56 image becomes 4 image
# tokens.
CHAT_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<unk>",
)
# Qwen2.5-Omni's audio tokens, after every other word (so the other tokens keep their ids).
AUDIO_SPECIALS = ("<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>")
_CHAT_VOCABULARY = """
system user assistant you helpful summarize summary above text image sentence one word find
screenshot that relevant to question : ' . ,
"""
CHAT_WORDS = tuple(_CHAT_VOCABULARY.split())
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MLLM_MIN_PIXELS = 56 * 56
MLLM_MAX_PIXELS = 112 * 112


def chat_tokenizer(chat_template: str | None = QWEN_CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    """A lower-casing word-level tokenizer with Qwen's special tokens and a chat template."""
    words = dict.fromkeys([*CHAT_SPECIALS, *WORDS, *CHAT_WORDS, *AUDIO_SPECIALS])
    vocab = {token: index for index, token in enumerate(words)}
    assert len(vocab) <= VOCAB_SIZE
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=[*CHAT_SPECIALS[1:7], *AUDIO_SPECIALS],
        chat_template=chat_template,
        model_max_length=512,
    )


def _qwen_text(tokenizer: PreTrainedTokenizerFast) -> dict[str, object]:
    """A tiny two-layer language model with multimodal RoPE and the tokenizer's special ids."""
    return _tower(
        vocab_size=VOCAB_SIZE,
        num_key_value_heads=1,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 2, 4], "rope_theta": 1e4},
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def _qwen_config(config_class: type, tokenizer: PreTrainedTokenizerFast, vision: dict) -> object:
    """A tiny Qwen2-VL-style config whose special token ids are the tokenizer's."""
    ids = tokenizer.convert_tokens_to_ids
    return config_class(
        text_config=_qwen_text(tokenizer),
        vision_config={
            "depth": 1,
            "hidden_size": HIDDEN,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            **vision,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def _save_mllm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, directory: Path) -> Path:
    """Save a chat model, its tokenizer and a Qwen2-VL image processor side by side."""
    processor = Qwen2VLImageProcessorPil(
        min_pixels=MLLM_MIN_PIXELS, max_pixels=MLLM_MAX_PIXELS, patch_size=14, merge_size=2
    )
    return _save(model, tokenizer, processor, directory)


def build_tiny_qwen2_vl(
    directory: str | Path, chat_template: str | None = QWEN_CHAT_TEMPLATE
) -> Path:
    """Save a tiny random ``Qwen2VLForConditionalGeneration``; return the directory."""
    tokenizer = chat_tokenizer(chat_template)
    vision = {"embed_dim": HIDDEN, "mlp_ratio": 2}
    config = _qwen_config(Qwen2VLConfig, tokenizer, vision)
    torch.manual_seed(SEED)
    return _save_mllm(Qwen2VLForConditionalGeneration(config), tokenizer, Path(directory))


def build_tiny_qwen2_5_vl(directory: str | Path) -> Path:
    """Save a tiny random ``Qwen2_5_VLForConditionalGeneration``; return the directory."""
    tokenizer = chat_tokenizer()
    vision = {
        "intermediate_size": 2 * HIDDEN,
        "out_hidden_size": HIDDEN,
        "window_size": 56,
        "fullatt_block_indexes": [0],
    }
    config = _qwen_config(Qwen2_5_VLConfig, tokenizer, vision)
    torch.manual_seed(SEED)
    return _save_mllm(Qwen2_5_VLForConditionalGeneration(config), tokenizer, Path(directory))


def build_tiny_qwen2_5_omni_thinker(directory: str | Path) -> Path:
    """Save a tiny random ``Qwen2_5OmniThinkerForConditionalGeneration``; return the directory.

    Its audio tower is tiny too (8 mel bins); as in the hub's Omni repositories, one
    preprocessor_config.json holds both the image processor's and the Whisper feature
    extractor's settings.
    """
    tokenizer = chat_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5OmniThinkerConfig(
        audio_config={
            "num_mel_bins": 8,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 2 * HIDDEN,
            "d_model": 16,
            "output_dim": HIDDEN,
            "max_source_positions": 32,
            "n_window": 4,
        },
        vision_config={
            "depth": 1,
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_heads": 2,
            "out_hidden_size": HIDDEN,
            "window_size": 56,
            "fullatt_block_indexes": [0],
        },
        text_config=_qwen_text(tokenizer),
        image_token_index=ids("<|image_pad|>"),
        video_token_index=ids("<|video_pad|>"),
        audio_token_index=ids("<|AUDIO|>"),
        audio_start_token_id=ids("<|audio_bos|>"),
        audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        user_token_id=ids("user"),
    )
    torch.manual_seed(SEED)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    directory = _save_mllm(model, tokenizer, Path(directory))
    audio = WhisperFeatureExtractor(feature_size=8, chunk_length=30, return_attention_mask=True)
    config_file = directory / "preprocessor_config.json"
    merged = {**json.loads(config_file.read_text()), **audio.to_dict()}
    config_file.write_text(json.dumps(merged, indent=2, sort_keys=True))
    return directory


def build_tiny_colqwen2(directory: str | Path) -> Path:
    """Save a tiny random ``ColQwen2ForRetrieval`` (a tiny Qwen2-VL inside, 16-d token
    embeddings) with its ``ColQwen2Processor``; return the directory."""
    tokenizer = chat_tokenizer(chat_template=None)
    vision = {"embed_dim": HIDDEN, "mlp_ratio": 2}
    config = ColQwen2Config(
        vlm_config=_qwen_config(Qwen2VLConfig, tokenizer, vision), embedding_dim=16
    )
    torch.manual_seed(SEED)
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=MLLM_MIN_PIXELS, max_pixels=MLLM_MAX_PIXELS, patch_size=14, merge_size=2
    )
    directory = Path(directory)
    ColQwen2ForRetrieval(config).save_pretrained(directory)
    ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        directory
    )
    return directory


def build_tiny_colpali(directory: str | Path) -> Path:
    """Save a tiny random ``ColPaliForRetrieval`` (a tiny PaliGemma inside, 16 image tokens,
    16-d token embeddings) with its ``ColPaliProcessor``; return the directory.

    The processor adds PaliGemma's image, location and segmentation tokens to the tokenizer,
    so the language model's vocabulary is sized after it.
    """
    tokenizer = _word_level_tokenizer(
        {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>"},
        "$A",
        ["input_ids", "attention_mask", "token_type_ids"],
    )
    tokenizer.model_max_length = 64
    image_processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    image_processor.image_seq_length = (IMAGE_SIZE // PATCH_SIZE) ** 2
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    text = _tower(
        model_type="gemma",
        vocab_size=len(processor.tokenizer),
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vlm = {
        "model_type": "paligemma",
        "text_config": text,
        "vision_config": _tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        "image_token_id": processor.image_token_id,
        "projection_dim": HIDDEN,
    }
    torch.manual_seed(SEED)
    directory = Path(directory)
    ColPaliForRetrieval(ColPaliConfig(vlm_config=vlm, embedding_dim=16)).save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny_clap(directory: str | Path, *, fusion: bool = False) -> Path:
    """Save a tiny random ``ClapModel`` (64 mel bins, as the fusion path requires; a 1 s window
    at 48 kHz) with its
    tokenizer and feature extractor; return the directory. ``fusion`` builds a checkpoint
    that fuses long clips (``truncation="fusion"``), else one that crops them."""
    tokenizer = _word_level_tokenizer(
        {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"},
        "<s> $A </s>",
        ["input_ids", "attention_mask"],
    )
    text = {**_text_tower(tokenizer), "max_position_embeddings": 2 * MAX_TOKENS}
    audio = {
        "num_mel_bins": 64,
        "spec_size": 128,
        "window_size": 4,
        "patch_size": 4,
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "hidden_size": HIDDEN,
        "patch_embeds_hidden_size": 16,
        "enable_fusion": fusion,
    }
    config = ClapConfig(text_config=text, audio_config=audio, projection_dim=24)
    extractor = ClapFeatureExtractor(
        feature_size=64,
        max_length_s=1,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )
    torch.manual_seed(SEED)
    return _save(ClapModel(config), tokenizer, extractor, Path(directory))


def build_tiny_whisper(directory: str | Path) -> Path:
    """Save a tiny random ``WhisperModel`` (8 mel bins, a 1 s window at 16 kHz) with its
    feature extractor; return the directory."""
    config = WhisperConfig(
        vocab_size=VOCAB_SIZE,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=2 * HIDDEN,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=2 * HIDDEN,
        max_source_positions=50,
        max_target_positions=MAX_TOKENS,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
        decoder_start_token_id=2,
    )
    torch.manual_seed(SEED)
    directory = Path(directory)
    WhisperModel(config).save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=8, chunk_length=1).save_pretrained(directory)
    return directory


def build_tiny_wav2vec2(
    directory: str | Path, *, kind: str = "wav2vec2", norm: str = "layer"
) -> Path:
    """Save a tiny random ``Wav2Vec2Model`` (``kind="wav2vec2"``) or ``HubertModel``
    (``"hubert"``) whose feature encoder uses ``norm`` (``"layer"`` or ``"group"``), with its
    feature extractor; return the directory."""
    settings = {
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": HIDDEN,
        "conv_dim": (8, 8),
        "conv_stride": (5, 2),
        "conv_kernel": (10, 3),
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        "feat_extract_norm": norm,
        "do_stable_layer_norm": norm == "layer",
    }
    config_class, model_class = {
        "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model),
        "hubert": (HubertConfig, HubertModel),
    }[kind]
    torch.manual_seed(SEED)
    directory = Path(directory)
    model_class(config_class(**settings)).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(
        do_normalize=True, return_attention_mask=norm == "layer"
    ).save_pretrained(directory)
    return directory
