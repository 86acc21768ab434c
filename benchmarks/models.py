"""The models of the comparison that are built, not shipped: the tests' tiny CLIP, a
random-initialised CLIP the size of ViT-B/32 (compute-bound on a CPU), and the tests' tiny
X-CLIP (8 frames of 32 x 32).

Run as ``python -m benchmarks.models BUILDER DIRECTORY`` to build one into DIRECTORY (builders:
``clip-b32``, ``clip-tiny``, ``xclip-tiny``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.suites import DEMO_CLIP

B32_SEED = 0


def build_b32(directory: Path) -> Path:
    """A ViT-B/32-size CLIP (vision 768 wide, 12 layers, patch 32, 224 px; text 512 wide,
    12 layers) with seeded random weights, the demo CLIP's tokenizer, and 224 px
    preprocessing; saved to ``directory``."""
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPConfig, CLIPModel

    tokenizer = AutoTokenizer.from_pretrained(DEMO_CLIP)
    text = {
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_attention_heads": 8,
        "num_hidden_layers": 12,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "patch_size": 32,
        "image_size": 224,
    }
    torch.manual_seed(B32_SEED)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=512))
    processor = AutoImageProcessor.from_pretrained(
        DEMO_CLIP, size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny(directory: Path) -> Path:
    """The tests' tiny random CLIP (``tests/tiny_models.py``)."""
    from tests.tiny_models import build_tiny_clip

    return build_tiny_clip(directory)


def build_tiny_xclip(directory: Path) -> Path:
    """The tests' tiny random X-CLIP, taking 8 frames as the demo X-CLIP and mteb's do."""
    from tests.tiny_models import build_tiny_xclip

    return build_tiny_xclip(directory, num_frames=XCLIP_FRAMES)


XCLIP_FRAMES = 8
BUILDERS = {"clip-b32": build_b32, "clip-tiny": build_tiny, "xclip-tiny": build_tiny_xclip}

if __name__ == "__main__":
    BUILDERS[sys.argv[1]](Path(sys.argv[2]))
