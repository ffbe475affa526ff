"""Prompts `rayvllm bench` sends: random ones of exactly --input-len tokens, built with a real
(tiny, trained here) tokenizer; the blueprint's prompts; JSONL files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from rayvllm.bench.workload import (
    WorkloadError,
    blueprint_requests,
    cycle,
    jsonl_requests,
    load_tokenizer,
    random_requests,
)

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "serving language models with ray and vllm",
    "tokens merge into words and words split into tokens",
] * 20


def bpe(bos: bool = False) -> Tokenizer:
    """A byte-level BPE whose merges make decode/encode round trips change lengths."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
        )
    return tokenizer


def wordlevel() -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    return tokenizer


@pytest.mark.parametrize("make", [bpe, wordlevel])
@pytest.mark.parametrize("length", [1, 7, 256])
def test_random_prompts_have_exactly_the_asked_length(make: object, length: int) -> None:
    tokenizer = make()  # type: ignore[operator]
    requests = random_requests(tokenizer, count=20, input_len=length, output_len=32, seed=1)
    assert [len(tokenizer.encode(r.prompt).ids) for r in requests] == [length] * 20
    assert all(r.prompt_len == length and r.output_len == 32 for r in requests)


def test_random_prompts_differ_and_repeat_with_the_seed() -> None:
    tokenizer = bpe()
    first = random_requests(tokenizer, count=30, input_len=64, output_len=8, seed=3)
    again = random_requests(tokenizer, count=30, input_len=64, output_len=8, seed=3)
    assert len({r.prompt for r in first}) == 30  # no two share a prefix cache entry
    assert first == again


def test_random_prompts_never_contain_special_tokens() -> None:
    tokenizer = bpe()
    specials = {tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")}
    for request in random_requests(tokenizer, count=20, input_len=50, output_len=8):
        assert not specials & set(tokenizer.encode(request.prompt).ids)


def test_bos_added_by_the_tokenizer_counts_towards_input_len() -> None:
    tokenizer = bpe(bos=True)
    for request in random_requests(tokenizer, count=10, input_len=32, output_len=8):
        assert len(tokenizer.encode(request.prompt, add_special_tokens=True).ids) == 32
    with pytest.raises(WorkloadError, match="special tokens"):
        random_requests(tokenizer, count=1, input_len=1, output_len=8)


def test_tokenizer_loads_from_a_folder_and_says_what_to_do_when_missing(tmp_path: Path) -> None:
    bpe().save(str(tmp_path / "tokenizer.json"))
    assert load_tokenizer(tmp_path).get_vocab_size() > 0
    with pytest.raises(WorkloadError, match="--tokenizer"):
        load_tokenizer(tmp_path / "nowhere")


def test_blueprint_prompts_are_the_twenty_of_rayvllm_client() -> None:
    requests = blueprint_requests(output_len=16)
    assert len(requests) == 20
    assert requests[0].prompt.startswith("Explain the concept of generative adversarial")


def test_jsonl_rows_take_their_own_output_len_or_the_default(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "a", "output_len": 5}\n\n{"prompt": "b"}\n')
    requests = jsonl_requests(path, output_len=9)
    assert [(r.prompt, r.output_len) for r in requests] == [("a", 5), ("b", 9)]
    path.write_text('{"text": "a"}\n')
    with pytest.raises(WorkloadError, match=r"w\.jsonl:1"):
        jsonl_requests(path, output_len=9)


def test_cycle_wraps_around_from_an_offset() -> None:
    requests = blueprint_requests(output_len=1)[:3]
    assert [r.prompt for r in cycle(requests, 4, start=2)] == [
        requests[2].prompt,
        requests[0].prompt,
        requests[1].prompt,
        requests[2].prompt,
    ]
