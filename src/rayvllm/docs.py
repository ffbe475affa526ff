"""Generate the config reference (Markdown) from ServeConfig: `python -m rayvllm.docs`."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import BaseModel

from rayvllm.config import ServeConfig


def _type(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    text = str(annotation).replace("typing.", "")
    for prefix in ("rayvllm.config.", "<class '", "'>"):
        text = text.replace(prefix, "")
    return text


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(see below)"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            return "one embedded model"
    elif field.is_required():
        return "required"
    else:
        value = field.default
    if hasattr(value, "value"):
        value = value.value
    return f"`{json.dumps(value)}`"


def reference() -> str:
    lines = [
        "# Config reference",
        "",
        "Generated from `rayvllm.config.ServeConfig` by `make schema`; do not edit.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("", ServeConfig)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [
            f"## `{path or 'top level'}` ({model.__name__})",
            "",
            (model.__doc__ or "").strip(),
            "",
            "| field | type | default | description |",
            "|---|---|---|---|",
        ]
        for name, field in model.model_fields.items():
            lines.append(
                f"| `{name}` | {_type(field.annotation)} | {_default(field)} | "
                f"{field.description or ''} |"
            )
            for sub in _models_in(field.annotation):
                queue.append((f"{path}.{name}".lstrip("."), sub))
        lines.append("")
    return "\n".join(lines)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        out += _models_in(arg)
    return out


if __name__ == "__main__":
    print(reference())
