"""checkov on deploy/terraform/eks: no failed check, and every suppression says why.

Registry modules are not downloaded (offline), so checkov sees the stack's own resources and
module arguments, not the resources inside terraform-aws-modules.

checkov runs from its own virtual environment: it pins old packaging/networkx/cachetools and
ships bc-python-hcl2, whose `hcl2` package would overwrite python-hcl2's in the project venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from eks_stack import REPO_ROOT, STACK_DIR

CHECKOV_VENV = REPO_ROOT / ".cache" / "checkov"
INSTALL_HINT = (
    f"python3 -m venv {CHECKOV_VENV} && {CHECKOV_VENV}/bin/pip install checkov==3.3.30 "
    "(or set CHECKOV_BIN)"
)
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def find_checkov() -> str | None:
    candidates = [os.environ.get("CHECKOV_BIN"), str(CHECKOV_VENV / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("checkov")


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, object]:
    checkov = find_checkov()
    if checkov is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"checkov is missing in CI: {INSTALL_HINT}")
        pytest.skip(f"checkov is not installed: {INSTALL_HINT}")
    result = subprocess.run(
        [
            checkov,
            "-d",
            str(STACK_DIR),
            "--framework",
            "terraform",
            "--quiet",
            "-o",
            "json",
            "--download-external-modules",
            "false",
            # No calls to the vendor's API for guideline links (there is no network here).
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "expected one report (terraform framework only)"
    return report


def test_checkov_finds_no_failed_check(checkov_report: dict[str, object]) -> None:
    failed = checkov_report["results"]["failed_checks"]  # type: ignore[index]
    described = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed]
    assert described == []


def test_checkov_parsed_every_file_and_saw_the_stacks_resources(
    checkov_report: dict[str, object],
) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0  # type: ignore[index]
    assert summary["resource_count"] >= 10  # type: ignore[index]
    assert summary["passed"] > 0  # type: ignore[index]


def test_every_checkov_suppression_gives_its_reason() -> None:
    for path in STACK_DIR.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" not in line:
                continue
            match = SKIP_COMMENT.search(line)
            assert match, f"{path.name}: malformed suppression: {line.strip()}"
            reason = (match.group("reason") or "").strip()
            assert len(reason) >= 20, f"{path.name}: {match.group('check')} suppressed without why"
