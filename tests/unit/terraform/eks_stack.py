"""Read deploy/terraform/eks offline: its HCL as Python data, its Karpenter templates rendered."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

REPO_ROOT = Path(__file__).resolve().parents[3]
STACK_DIR = REPO_ROOT / "deploy" / "terraform" / "eks"
KARPENTER_TEMPLATES = STACK_DIR / "manifests" / "karpenter"

# Plain values out (no quote marks kept, no block markers): "5.100.0", not '"5.100.0"'.
_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)

# The only template syntax the manifests may use, so that this renderer stays faithful to
# Terraform's templatefile(): ${name} and ${jsonencode(name)}.
_PLACEHOLDER = re.compile(r"\$\{(?:jsonencode\((\w+)\)|(\w+))\}")
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass
class Stack:
    """Top-level blocks of every .tf file in the folder, merged by kind."""

    providers_required: dict[str, dict[str, str]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[kind][name]

    def default(self, variable: str) -> Any:
        return self.variables[variable]["default"]


def load_stack(directory: Path = STACK_DIR) -> Stack:
    stack = Stack()
    for path in sorted(directory.glob("*.tf")):
        text = path.read_text()
        stack.files[path.name] = text
        parsed = hcl2.loads(text, serialization_options=_OPTIONS)
        for block in parsed.get("terraform", []):
            for required in block.get("required_providers", []):
                stack.providers_required.update(required)
        for kind, target in (
            ("variable", stack.variables),
            ("output", stack.outputs),
            ("module", stack.modules),
        ):
            for block in parsed.get(kind, []):
                target.update(block)
        for kind, by_type in (("resource", stack.resources), ("data", stack.data)):
            for block in parsed.get(kind, []):
                for type_name, instances in block.items():
                    by_type.setdefault(type_name, {}).update(instances)
        for block in parsed.get("locals", []):
            stack.locals.update(block)
    return stack


def variable_name(reference: str) -> str:
    """'${var.gpu_limit}' -> 'gpu_limit'."""
    match = re.fullmatch(r"\$\{var\.(\w+)\}", reference)
    assert match, f"not a plain variable reference: {reference}"
    return match.group(1)


def placeholders(template: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _PLACEHOLDER.finditer(template)}


def render_template(path: Path, context: dict[str, Any]) -> dict[str, Any]:
    """Render a manifest template the way templatefile() would, then parse its YAML."""
    text = path.read_text()
    if "%{" in text:
        raise ValueError(f"{path.name}: template directives are not supported by this renderer")
    leftover = re.sub(_PLACEHOLDER, "", text)
    if "${" in leftover:
        raise ValueError(f"{path.name}: only ${{name}} and ${{jsonencode(name)}} are supported")

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return json.dumps(context[match.group(1)], separators=(",", ":"))
        value = context[match.group(2)]
        return str(value).lower() if isinstance(value, bool) else str(value)

    document = yaml.safe_load(re.sub(_PLACEHOLDER, substitute, text))
    assert isinstance(document, dict), f"{path.name} did not render to one YAML mapping"
    return document
