"""The model families by name: the built-in ones, then those installed plugins declare under the
entry-point group ``harness.model_families`` (``name = module:attr``, the attribute a
``harness.model_adapters.family.Family`` of that name).

Importing this module is cheap: each family's adapter module loads with its first model.
"""

from __future__ import annotations

from harness.core.plugins import Registry
from harness.model_adapters.family import Family, ModelFiles, config_model_type

FAMILIES_GROUP = "harness.model_families"
SENTENCE_TRANSFORMERS = "sentence-transformers"
CLIP = "clip"
OCR = "ocr"
MLLM = "mllm"
MLLM_VISION = "mllm-vision"
CLAP = "clap"
AUDIO_ENCODER = "audio-encoder"
XCLIP = "xclip"
LATE_INTERACTION = "late-interaction"
LLAVA_NEXT = "llava-next"
GME = "gme"
# Config model types served by harness/model_adapters/mllm.py: the mllm family (Omni thinkers:
# audio, images, text and video) and the mllm-vision family (images, text and video).
MLLM_MODEL_TYPES = frozenset({"qwen2_5_omni", "qwen2_5_omni_thinker"})
MLLM_VISION_MODEL_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl"})
# Config model types served by the audio-encoder family (harness/model_adapters/audio_encoder.py).
AUDIO_ENCODER_MODEL_TYPES = frozenset({"whisper", "wav2vec2", "hubert", "wavlm", "data2vec-audio"})
# Config model types served by the late-interaction family
# (harness/model_adapters/late_interaction.py).
LATE_INTERACTION_MODEL_TYPES = frozenset({"colpali", "colqwen2"})


def _has_modules_file(files: ModelFiles) -> bool:
    """A sentence-transformers model: it has modules.json."""
    return files.file("modules.json") is not None


def _is_mllm(files: ModelFiles) -> bool:
    return config_model_type(files) in MLLM_MODEL_TYPES


def _is_mllm_vision(files: ModelFiles) -> bool:
    return config_model_type(files) in MLLM_VISION_MODEL_TYPES


def _is_llava_next(files: ModelFiles) -> bool:
    return config_model_type(files) == "llava_next"


def _is_clap(files: ModelFiles) -> bool:
    return config_model_type(files) == "clap"


def _is_xclip(files: ModelFiles) -> bool:
    return config_model_type(files) == "xclip"


def _is_audio_encoder(files: ModelFiles) -> bool:
    return config_model_type(files) in AUDIO_ENCODER_MODEL_TYPES


def _is_late_interaction(files: ModelFiles) -> bool:
    return config_model_type(files) in LATE_INTERACTION_MODEL_TYPES


# Model types whose AutoModel class has both feature methods but no joint embedding to give:
# BLIP-2's get_text_features returns its language model's hidden states (no pooled vector),
# FLAVA's projects every token, and BLIP's hub checkpoints (captioning, VQA, retrieval) lack
# BlipModel's projections.
NOT_DUAL_ENCODER_TYPES = frozenset({"blip", "blip-2", "flava"})


def _is_dual_encoder(files: ModelFiles) -> bool:
    """Whether transformers' AutoModel class for the model's type has both feature methods
    (and they give one joint embedding per input)."""
    model_type = config_model_type(files)
    if model_type is None or model_type in NOT_DUAL_ENCODER_TYPES:
        return False
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    names = MODEL_MAPPING_NAMES.get(model_type) or ""
    class_name = names if isinstance(names, str) else names[0]  # a tuple names it first
    try:
        model_class = getattr(transformers, class_name, None)
        return all(
            hasattr(model_class, method) for method in ("get_text_features", "get_image_features")
        )
    except ImportError:  # the model needs a library that is not installed
        return False


def _adopt_family(name: str, loaded: object) -> Family:
    """A plugin's family: a ``Family`` record named after its entry point."""
    if not isinstance(loaded, Family):
        raise TypeError(f"expected a harness.model_adapters.family.Family, got {loaded!r}")
    if loaded.name != name:
        raise ValueError(f"its record says its name is {loaded.name!r}, not {name!r}")
    return loaded


# In detection order: a model with modules.json is a sentence-transformers model whatever its
# config says, and a config model type of its own family beats the generic dual-encoder test.
BUILTIN_FAMILIES = (
    Family(
        name=SENTENCE_TRANSFORMERS,
        modalities=("text",),
        factory="harness.model_adapters.sentence_transformers:SentenceTransformerAdapter",
        detects=_has_modules_file,
        description="text models saved by sentence-transformers (modules.json)",
        options="harness.model_adapters.sentence_transformers:OPTIONS",
    ),
    Family(
        name=MLLM,
        modalities=("audio", "image", "text", "video"),
        factory="harness.model_adapters.mllm:MllmAdapter",
        detects=_is_mllm,
        description=(
            "Qwen2.5-Omni thinkers (LCO-Embedding): audio, images, text and video, last token"
        ),
        options="harness.model_adapters.mllm:OPTIONS",
        # mteb's LCO-Embedding wrapper: one prompt, the image then the text.
        document_parts="fused",
    ),
    Family(
        name=MLLM_VISION,
        modalities=("image", "text", "video"),
        factory="harness.model_adapters.mllm:MllmAdapter",
        detects=_is_mllm_vision,
        description="Qwen2-VL and Qwen2.5-VL multimodal LLMs (the mllm adapter), last token",
        options="harness.model_adapters.mllm:OPTIONS",
        document_parts="fused",  # one prompt, as for the mllm family
    ),
    Family(
        name=LLAVA_NEXT,
        modalities=("image", "text"),
        factory="harness.model_adapters.llava_next:LlavaNextAdapter",
        detects=_is_llava_next,
        description="LLaVA-NeXT last-token embedders (E5-V): images and text, E5-V's prompts",
        options="harness.model_adapters.llava_next:OPTIONS",
        # mteb's E5-V wrapper: one composed prompt with the image and the text.
        document_parts="fused",
    ),
    Family(
        name=GME,
        modalities=("image", "text"),
        factory="harness.model_adapters.gme:GmeAdapter",
        description=(
            "GME (Qwen2-VL): images and text, GME's prompts and instructions, last token; "
            "registered models only (their config says qwen2_vl, as mllm-vision models' do)"
        ),
        options="harness.model_adapters.gme:OPTIONS",
        # mteb's GME wrapper: one prompt with the image and the text.
        document_parts="fused",
    ),
    Family(
        name=CLAP,
        modalities=("audio", "text"),
        factory="harness.model_adapters.clap:ClapAdapter",
        detects=_is_clap,
        description="transformers ClapModel: audio and text towers, as mteb runs CLAP",
        options="harness.model_adapters.clap:OPTIONS",
    ),
    Family(
        name=AUDIO_ENCODER,
        modalities=("audio",),
        factory="harness.model_adapters.audio_encoder:AudioEncoderAdapter",
        detects=_is_audio_encoder,
        description="Whisper's encoder and wav2vec2-style speech encoders, mean-pooled",
        options="harness.model_adapters.audio_encoder:OPTIONS",
    ),
    Family(
        name=LATE_INTERACTION,
        modalities=("image", "text"),
        factory="harness.model_adapters.late_interaction:LateInteractionAdapter",
        detects=_is_late_interaction,
        description="ColPali/ColQwen2 multi-vector (MaxSim) retrievers",
        options=frozenset(),
        # mteb's ColPali wrapper: the text's token vectors, then the page's.
        document_parts="fused",
    ),
    Family(
        name=XCLIP,
        modalities=("text", "video"),
        factory="harness.model_adapters.xclip:XClipAdapter",
        detects=_is_xclip,
        description="transformers XCLIPModel: video and text towers, as mteb runs X-CLIP",
        options=frozenset(),
    ),
    Family(
        name=CLIP,
        modalities=("image", "text", "video"),
        factory="harness.model_adapters.clip:ClipAdapter",
        detects=_is_dual_encoder,
        description="transformers dual encoders with get_text_features and get_image_features",
        options="harness.model_adapters.clip:OPTIONS",
        # mteb's CLIP-style wrappers: the image embedding plus the text embedding.
        document_parts="fused",
    ),
    Family(
        name=OCR,
        modalities=("image", "text"),
        factory="harness.model_adapters.ocr:OcrTextAdapter",
        description="Tesseract reads each page; a sentence-transformers model embeds the text",
        options="harness.model_adapters.ocr:OPTIONS",
        # Its own: the text, then the text Tesseract reads from the page.
        document_parts="fused",
    ),
)
# Every family by name. Listing the names imports no adapter module; a plugin's module is
# imported when its family is first looked up (or asked whether it detects a model).
FAMILIES: Registry[Family] = Registry(
    "model family",
    FAMILIES_GROUP,
    {family.name: family for family in BUILTIN_FAMILIES},
    _adopt_family,
)
