from __future__ import annotations

import pytest

from rayvllm.config import FakeEngineConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.legacy_prompt import instruction_messages, legacy_prompt_ids

SYSTEM = "<<SYS>>\nKeep short answers of no more than 100 sentences.\n<</SYS>>\n\n"


def test_blueprint_turn_becomes_system_and_user_messages() -> None:
    assert instruction_messages("<s>[INST]" + SYSTEM + "What is AI?[/INST]") == [
        {"role": "system", "content": "Keep short answers of no more than 100 sentences."},
        {"role": "user", "content": "What is AI?"},
    ]
    assert instruction_messages("[INST] hi [/INST]") == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "prompt",
    [
        "plain text",
        "[INST] a [/INST] answer [INST] b [/INST]",
        "[INST] unterminated",
    ],
)
def test_anything_else_is_left_alone(prompt: str) -> None:
    assert instruction_messages(prompt) is None


def test_chatml_model_gets_its_own_template_and_plain_prompts_pass_through() -> None:
    engine = FakeEngine("m", FakeEngineConfig())
    wrapped = legacy_prompt_ids(engine, "[INST] hi there [/INST]")
    assert wrapped == engine.tokenize(
        engine.render_chat([{"role": "user", "content": "hi there"}]), add_special_tokens=False
    )
    assert legacy_prompt_ids(engine, "plain prompt") == engine.tokenize("plain prompt")


def test_a_model_whose_template_is_inst_gets_the_prompt_as_sent() -> None:
    class Mistralish(FakeEngine):
        def render_chat(self, messages: list[dict[str, str]]) -> str:
            return "".join(f"[INST] {m['content']} [/INST]" for m in messages)

    engine = Mistralish("m", FakeEngineConfig())
    prompt = "<s>[INST] hi [/INST]"
    assert legacy_prompt_ids(engine, prompt) == engine.tokenize(prompt)
