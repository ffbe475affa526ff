"""The blueprint's /vllm clients wrap prompts in Mistral's instruction format
(`<s>[INST] <<SYS>>...<</SYS>> question [/INST]`). For a model whose chat template speaks another
format (SmolLM2's ChatML, say) that text reads as noise and the model ends at once, so a single
well-formed [INST] turn is re-rendered through the model's own template. Anything else, and any
model whose template is [INST] already, gets the prompt exactly as sent."""

from __future__ import annotations

import re

from rayvllm.engine.base import Engine

_TURN = re.compile(r"^\s*(?:<s>)?\s*\[INST\](?P<body>.*?)\[/INST\]\s*$", re.DOTALL)
_SYS = re.compile(r"^\s*<<SYS>>\s*(?P<system>.*?)\s*<</SYS>>\s*", re.DOTALL)


def instruction_messages(prompt: str) -> list[dict[str, str]] | None:
    """The chat messages of a single [INST] turn, or None if `prompt` is not exactly one."""
    match = _TURN.match(prompt)
    if match is None or "[INST]" in match["body"]:
        return None
    body = match["body"]
    messages = []
    sys_match = _SYS.match(body)
    if sys_match:
        messages.append({"role": "system", "content": sys_match["system"]})
        body = body[sys_match.end() :]
    messages.append({"role": "user", "content": body.strip()})
    return messages


def legacy_prompt_ids(engine: Engine, prompt: str) -> list[int]:
    messages = instruction_messages(prompt)
    if messages is not None:
        probe = engine.render_chat([{"role": "user", "content": "x"}])
        if "[INST]" not in probe:
            return engine.tokenize(engine.render_chat(messages), add_special_tokens=False)
    return engine.tokenize(prompt)
