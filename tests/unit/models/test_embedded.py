"""The embedded model: where its checkpoint is cached, how sources resolve, and a real conversion
of the shipped SmolLM2 GGUF (about 30-60 s on two cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rayvllm.models import EMBEDDED_MODELS, checkpoint_dir, ensure_checkpoint, resolve_source
from rayvllm.models.embedded import MARKER_FILE, read_marker

NAME = "smollm2-135m-instruct"


def test_cache_dir_honours_rayvllm_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAYVLLM_CACHE_DIR", str(tmp_path))
    assert checkpoint_dir() == tmp_path / "models" / NAME


def test_cache_dir_defaults_to_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RAYVLLM_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert checkpoint_dir(NAME) == tmp_path / ".cache" / "rayvllm" / "models" / NAME


@pytest.mark.parametrize(
    "source", ["HuggingFaceTB/SmolLM2-135M-Instruct", "/models/llama-3-8b", "./checkpoints/mine"]
)
def test_non_embedded_sources_pass_through(source: str) -> None:
    assert resolve_source(source) == source


@pytest.mark.parametrize("source", ["embedded:gpt-5", "embedded:"])
def test_unknown_embedded_model_lists_the_known_ones(source: str) -> None:
    with pytest.raises(ValueError, match=f"known: embedded:{NAME}"):
        resolve_source(source)


def test_registry_holds_smollm2() -> None:
    assert list(EMBEDDED_MODELS) == [NAME]


def _ensure_in_subprocess(cache: Path) -> subprocess.Popen[str]:
    code = "from rayvllm.models import ensure_checkpoint; print(ensure_checkpoint())"
    env = {**os.environ, "RAYVLLM_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """Two processes ask for the checkpoint at once, over the debris of a crashed conversion."""
    cache = tmp_path_factory.mktemp("cache")
    target = cache / "models" / NAME
    target.mkdir(parents=True)
    (target / "config.json").write_text("{half-written")  # no marker: incomplete
    (cache / "models" / f".{NAME}.tmp-crashed").mkdir()
    processes = [_ensure_in_subprocess(cache) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
    assert [stdout.strip() for stdout, _ in results] == [str(target)] * 2
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAYVLLM_CACHE_DIR", str(cache))
        yield target, [stderr for _, stderr in results]


def test_concurrent_callers_share_one_conversion(converted: tuple[Path, list[str]]) -> None:
    target, stderrs = converted
    assert sum("Converting embedded model" in err for err in stderrs) == 1
    assert not (target.parent / f".{NAME}.tmp-crashed").exists()
    marker = read_marker(target)
    assert marker is not None and marker.gguf_size > 50_000_000 and len(marker.gguf_sha256) == 64


def test_checkpoint_is_a_plain_dense_llama(converted: tuple[Path, list[str]]) -> None:
    target, _ = converted
    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["dtype"] == "bfloat16"
    assert (target / "model.safetensors").stat().st_size > 200_000_000


def test_tokenizer_json_reads_with_tokenizers_alone(converted: tuple[Path, list[str]]) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(converted[0] / "tokenizer.json"))
    ids = tokenizer.encode("<|im_start|>user\nHi<|im_end|>").ids
    assert ids[0] == tokenizer.token_to_id("<|im_start|>")
    assert ids[-1] == tokenizer.token_to_id("<|im_end|>")


def test_chat_template_is_chatml_in_tokenizer_config(converted: tuple[Path, list[str]]) -> None:
    config = json.loads((converted[0] / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in config["chat_template"]
    assert config["eos_token"] == "<|im_end|>"


def test_transformers_loads_it_and_it_answers(converted: tuple[Path, list[str]]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target, _ = converted
    tokenizer = AutoTokenizer.from_pretrained(target)
    model: Any = AutoModelForCausalLM.from_pretrained(target)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt: Any = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_second_call_reuses_the_checkpoint_without_torch(converted: tuple[Path, list[str]]) -> None:
    target, _ = converted
    marker_mtime = (target / MARKER_FILE).stat().st_mtime_ns
    code = (
        "import sys; from rayvllm.models import resolve_source; "
        f"print(resolve_source('embedded:{NAME}')); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(target), "False"]
    assert ensure_checkpoint(NAME, progress=False) == target
    assert (target / MARKER_FILE).stat().st_mtime_ns == marker_mtime
