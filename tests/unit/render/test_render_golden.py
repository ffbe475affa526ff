"""The manifests rendered from examples/ are byte for byte the reviewed ones in tests/golden/.
A change to the renderer shows up as a diff in review; `UPDATE_GOLDEN=1 pytest
tests/unit/render/test_render_golden.py` writes the new files after a deliberate change."""

from __future__ import annotations

import difflib
import os

import pytest
from render_cases import GOLDEN, GOLDEN_CASES, load_example

from rayvllm.render import render_manifests, to_yaml, write_manifests


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_rendered_examples_match_golden_files(case: str) -> None:
    file, options = GOLDEN_CASES[case]
    config = load_example(file)
    golden_dir = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN") == "1":
        write_manifests(config, options, golden_dir)
    rendered = {name: to_yaml(docs) for name, docs in render_manifests(config, options).items()}
    on_disk = {p.name: p.read_text() for p in sorted(golden_dir.glob("*.yaml"))}
    assert sorted(on_disk) == sorted(rendered), "files differ: rerun with UPDATE_GOLDEN=1"
    for name, text in rendered.items():
        if on_disk[name] != text:
            diff = "".join(
                difflib.unified_diff(
                    on_disk[name].splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"golden/{case}/{name}",
                    "rendered",
                    n=2,
                )
            )
            pytest.fail(f"{name} changed (UPDATE_GOLDEN=1 accepts it):\n{diff[:4000]}")
