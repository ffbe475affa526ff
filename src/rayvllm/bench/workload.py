"""What `rayvllm bench` sends: random prompts of exact token length, the blueprint's prompts, or
a JSONL file. Tokenizers load from tokenizer.json via the `tokenizers` library, not transformers."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from tokenizers import Tokenizer

from rayvllm.models.embedded import checkpoint_dir

# Decode/re-encode rounds before a prompt is resampled from scratch (vLLM's RandomDataset does 10
# and then accepts a mismatch; we never accept one).
_ADJUST_ROUNDS = 10
_RESAMPLES = 20


class WorkloadError(ValueError):
    """A dataset or tokenizer that cannot produce the requested workload."""


class BenchRequest(BaseModel):
    """One prompt to send and how many tokens to ask for."""

    model_config = ConfigDict(frozen=True)

    prompt: str = Field(description="Prompt text (the user message for the chat endpoint).")
    output_len: int = Field(gt=0, description="max_tokens sent with the request.")
    prompt_len: int | None = Field(
        None, description="Prompt tokens as built; the server's usage count wins when it has one."
    )


def default_tokenizer_dir() -> Path:
    """The embedded model's checkpoint folder, where `rayvllm serve` keeps its tokenizer.json."""
    return checkpoint_dir()


def load_tokenizer(path: Path) -> Tokenizer:
    """A tokenizer from a tokenizer.json file or a folder holding one."""
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise WorkloadError(
            f"no tokenizer.json at {file}: pass --tokenizer DIR (a folder with the served model's "
            "tokenizer.json), or start `rayvllm serve` once so the embedded model is cached"
        )
    return Tokenizer.from_file(str(file))


def _ordinary_token_ids(tokenizer: Tokenizer) -> list[int]:
    added = set(tokenizer.get_added_tokens_decoder())
    return [i for i in range(tokenizer.get_vocab_size(with_added_tokens=False)) if i not in added]


def exact_length_prompts(
    tokenizer: Tokenizer, count: int, length: int, rng: random.Random
) -> list[str]:
    """`count` texts that each re-encode to exactly `length` tokens (special tokens not counted).

    Random token ids rarely survive decode -> encode unchanged (merges differ at the seams), so,
    as vLLM's RandomDataset does, re-encode, truncate or top up with more random ids, and repeat;
    whole batches at a time, since the tokenizer parallelises those.
    """
    token_ids = _ordinary_token_ids(tokenizer)
    texts: list[str] = [""] * count
    pending = {i: rng.choices(token_ids, k=length) for i in range(count)}
    for round_ in range(_ADJUST_ROUNDS * _RESAMPLES):
        if not pending:
            return texts
        if round_ and round_ % _ADJUST_ROUNDS == 0:
            pending = {i: rng.choices(token_ids, k=length) for i in pending}  # start afresh
        order = list(pending)
        decoded = tokenizer.decode_batch([pending[i] for i in order])
        encoded = tokenizer.encode_batch(decoded, add_special_tokens=False)
        for i, text, encoding in zip(order, decoded, encoded, strict=True):
            ids = encoding.ids
            if len(ids) == length:
                texts[i] = text
                del pending[i]
            elif len(ids) > length:
                pending[i] = ids[:length]
            else:
                pending[i] = ids + rng.choices(token_ids, k=length - len(ids))
    if pending:
        raise WorkloadError(
            f"could not build prompts of exactly {length} tokens with this tokenizer"
        )
    return texts


def random_requests(
    tokenizer: Tokenizer, count: int, input_len: int, output_len: int, seed: int = 0
) -> list[BenchRequest]:
    """`count` distinct prompts that the server will count as exactly `input_len` tokens.

    Tokens the tokenizer adds itself (a BOS, say) are part of input_len, as in `vllm bench serve`.
    """
    special = tokenizer.num_special_tokens_to_add(is_pair=False)
    body_len = input_len - special
    if body_len < 1:
        raise WorkloadError(
            f"--input-len {input_len} leaves no room for text: the tokenizer adds {special} "
            "special tokens itself"
        )
    texts = exact_length_prompts(tokenizer, count, body_len, random.Random(seed))
    return [BenchRequest(prompt=t, output_len=output_len, prompt_len=input_len) for t in texts]


def blueprint_requests(output_len: int) -> list[BenchRequest]:
    """The blueprint's 20 prompts (the ones `rayvllm client` sends)."""
    text = resources.files("rayvllm").joinpath("client", "prompts.txt").read_text("utf-8")
    return [
        BenchRequest(prompt=line.strip(), output_len=output_len)
        for line in text.splitlines()
        if line.strip()
    ]


def jsonl_requests(path: Path, output_len: int) -> list[BenchRequest]:
    """Lines of {"prompt": str, "output_len": int (optional, else --output-len)}."""
    requests = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            requests.append(
                BenchRequest(
                    prompt=row["prompt"], output_len=int(row.get("output_len") or output_len)
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise WorkloadError(
                f'{path}:{number}: expected {{"prompt": str, "output_len": int}}: {error}'
            ) from error
    if not requests:
        raise WorkloadError(f"{path} holds no prompts")
    return requests


def cycle(requests: list[BenchRequest], count: int, start: int = 0) -> list[BenchRequest]:
    """`count` requests taken round-robin from `requests`, beginning at index `start`."""
    return [requests[(start + i) % len(requests)] for i in range(count)]
