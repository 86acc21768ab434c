"""One side of the comparison: mteb's own ``evaluate`` on mteb task classes over local files.

The tasks are ``benchmarks/mteb_tasks.py``'s. For images the model is a minimal encoder in
mteb's protocol over the same transformers CLIP and preprocessing as
``harness/model_adapters/clip.py``;
it returns torch tensors, as mteb's CLIP wrapper does. For audio it is mteb's own CLAP wrapper
(``ClapZeroShotWrapper``). Two stand-ins make mteb's audio path run here: ``datasets`` decodes
Audio columns through torchcodec, which is not installed, so its decode is soundfile's (the
harness's decoder, and what torchcodec yields for the demo's 16-bit FLAC: float32 samples,
channels averaged, as ``datasets``' AudioDecoder gives them); and mteb's audio collator imports
torchaudio, which has no build for this torch, so a stand-in module is installed whose
resampler refuses to run (the demo clips are at the demo CLAP's 16 kHz: nothing is resampled).
For video it is mteb's own X-CLIP wrapper (``XCLIPModel``), with a PyAV stand-in for
torchcodec's ``VideoDecoder`` (``benchmarks/video_stand_in.py``), whose wheels need CUDA here.

Run as ``python -m benchmarks.mteb_side MODEL_DIR SUITE REPORT.json [BATCH_SIZE]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _probe, video_stand_in
from benchmarks.mteb_tasks import build_tasks
from benchmarks.suites import SUITES


class ClipEncoder:
    """mteb's EncoderProtocol over a transformers CLIP, preprocessed as the clip adapter does."""

    def __init__(self, model_dir: str) -> None:
        from mteb.models import ModelMeta
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.image_processor = AutoImageProcessor.from_pretrained(model_dir)
        self.max_length = int(self.tokenizer.model_max_length)
        if self.max_length >= 1_000_000:
            self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.mteb_model_meta = (
            ModelMeta.create_empty() if hasattr(ModelMeta, "create_empty") else None
        )

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Texts and/or images of each batch; an item with both is the sum, as mteb's CLIP."""
        import torch

        features = inputs.dataset.features
        chunks: list[Any] = []
        with torch.inference_mode():
            for batch in inputs:
                vectors = None
                if "text" in features:
                    vectors = self._texts(batch["text"])
                if "image" in features:
                    images = self._images(batch["image"])
                    vectors = images if vectors is None else vectors + images
                chunks.append(vectors)
        return torch.cat(chunks)

    def _texts(self, texts: list[str]) -> Any:
        batch = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        output = self.model.get_text_features(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        )
        return _pooled(output)

    def _images(self, images: list[Any]) -> Any:
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        batch = self.image_processor(images=rgb, return_tensors="pt")
        return _pooled(self.model.get_image_features(pixel_values=batch["pixel_values"]))

    def similarity(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import cos_sim

        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(a, b)


def _pooled(output: Any) -> Any:
    return (output if hasattr(output, "shape") else output.pooler_output).float()


def decode_with_soundfile(self: Any, value: dict[str, Any], token_per_repo_id: Any = None) -> Any:
    """``datasets.Audio.decode_example`` without torchcodec: the clip's samples (float32,
    channels averaged) and rate, under the keys mteb reads from datasets' AudioDecoder."""
    import io

    import numpy as np
    import soundfile

    if not isinstance(value, dict) or "array" in value:
        return value
    source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
    samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    return {"array": np.mean(samples, axis=1, dtype=np.float32), "sampling_rate": int(rate)}


class _NoResampling:
    """torchaudio's ``transforms.Resample`` stand-in: the demo clips never need resampling."""

    def __init__(self, orig_freq: int, new_freq: int, **kwargs: Any) -> None:
        raise AssertionError(
            f"mteb asked to resample {orig_freq} Hz to {new_freq} Hz: this benchmark's clips "
            "must be at the model's rate (torchaudio is not installable here)"
        )


def install_audio_stand_ins() -> None:
    """Decode ``datasets`` Audio columns with soundfile; a torchaudio that cannot resample."""
    import types

    import datasets

    datasets.Audio.decode_example = decode_with_soundfile
    torchaudio = types.ModuleType("torchaudio")
    torchaudio.transforms = types.SimpleNamespace(Resample=_NoResampling)  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = torchaudio


def load_model(modality: str, model_dir: str) -> Any:
    """The suite's model in mteb's protocol: the CLIP encoder above, or mteb's CLAP or X-CLIP
    wrapper (the latter taking the checkpoint's number of frames, as mteb's X-CLIP entries
    declare it)."""
    if modality == "image":
        return ClipEncoder(model_dir)
    if modality == "video":
        return xclip_wrapper(model_dir)
    install_audio_stand_ins()
    from mteb.models.model_implementations.clap_models import ClapZeroShotWrapper

    return ClapZeroShotWrapper(model_dir, revision=None, device="cpu")  # type: ignore[arg-type]


def xclip_wrapper(model_dir: str) -> Any:
    """mteb's ``XCLIPModel`` wrapper, decoding through the PyAV torchcodec stand-in."""
    from mteb.models.model_implementations.xclip_models import XCLIPModel
    from transformers import AutoConfig

    video_stand_in.install()
    frames = int(AutoConfig.from_pretrained(model_dir).vision_config.num_frames)
    return XCLIPModel(model_dir, revision=None, device="cpu", num_frames=frames)  # type: ignore[arg-type]


def main(model_dir: str, suite: str, report: Path, batch_size: int = 32) -> None:
    """Evaluate the suite's tasks through mteb and write scores, counts, time and memory."""
    chosen = SUITES[suite]
    _probe.install(chosen.modality)
    start = time.perf_counter()
    model = load_model(chosen.modality, model_dir)
    scores: dict[str, float] = {}
    for task in build_tasks(chosen.tasks):
        task.load_data()
        result = task.evaluate(
            model, "test", encode_kwargs={"batch_size": batch_size, "show_progress_bar": False}
        )
        scores[task.metadata.name] = float(result["default"]["main_score"])
    payload = {
        "scores": scores,
        "run_seconds": time.perf_counter() - start,
        "peak_rss_mib": _probe.peak_rss_mib(),
        **_probe.counts(),
    }
    _probe.write_report(report, payload)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), *map(int, sys.argv[4:5]))
