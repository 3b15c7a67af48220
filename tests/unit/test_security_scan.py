"""checkov over every template: the three infra/ stacks and template.yaml (the SAM app).

checkov's cloudformation framework reads SAM templates as they are (AWS::Serverless::Function
included), offline with --skip-download. A check that does not apply is skipped in the resource's
Metadata (checkov: skip:, with the reason as its comment), never on the command line, so the
reason sits next to the resource it excuses. Three things are asserted for each template: no
failed check; every skip is honoured and explained; every skip still hides a real finding (no
stale skip survives a template or checkov change).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.helpers import REPO

SAM_TEMPLATE = REPO / "template.yaml"
TEMPLATES = {
    "template.yaml": SAM_TEMPLATE,
    **{name: REPO / "infra" / name / "template.yaml" for name in ("ecs-cluster", "ecs-service", "elb")},
    "image-repository": REPO / "infra/ecs-service/image-repository.yaml",
}
CHECKOV = Path(sys.executable).parent / "checkov"

pytestmark = pytest.mark.slow
every_template = pytest.mark.parametrize("name", sorted(TEMPLATES))


def run_checkov(path: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed next to {sys.executable}; run make venv")
    done = subprocess.run(
        [
            str(CHECKOV),
            "-f",
            str(path),
            "--framework",
            "cloudformation",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr  # 1 = failed checks, asserted by the tests
    return json.loads(done.stdout)


@functools.cache
def report(name: str) -> dict[str, Any]:
    return run_checkov(TEMPLATES[name])


def load(name: str) -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATES[name]))


def declared_skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(logical id, check id) -> reason, from each resource's Metadata: checkov: skip:."""
    return {
        (logical_id, skip["id"]): skip.get("comment", "")
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def checks(result: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    """(logical id, check id) of the failed_checks or skipped_checks of a report."""
    return {(c["resource"].split(".", 1)[1], c["check_id"]) for c in result["results"].get(kind, [])}


def test_every_template_in_the_repository_is_scanned():
    # Given every CloudFormation/SAM template of the checkout
    found = {
        p
        for p in REPO.rglob("*.yaml")
        if not {".venv", ".aws-sam", "node_modules"} & set(p.parts)
        and "AWSTemplateFormatVersion" in p.read_text(encoding="utf-8")
    }
    # Then each one is in this module's list
    assert found == set(TEMPLATES.values())


@every_template
def test_checkov_finds_no_failed_check(name):
    # Given a template as written (SAM resources not translated)
    # When checkov, the pinned version, scans it offline
    result = report(name)
    summary = result["summary"]
    # Then it parsed the template, ran checks, and nothing failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    assert checks(result, "failed_checks") == set() and summary["failed"] == 0


def test_checkov_checks_the_sam_functions_themselves():
    result = report("template.yaml")
    checked = {c["resource"] for kind in ("passed_checks", "skipped_checks") for c in result["results"][kind]}
    assert {
        "AWS::Serverless::Function.RedeployServiceFunction",
        "AWS::Serverless::Function.ScheduledRefreshFunction",
    } <= checked


@every_template
def test_every_checkov_skip_is_honoured_and_explained(name):
    # Given the skips declared in the template's resource metadata
    declared = declared_skips(load(name))
    # When checkov scans the template
    result = report(name)
    # Then checkov honoured exactly those, and each one says why in words a reviewer can judge
    assert checks(result, "skipped_checks") == set(declared)
    for (logical_id, check_id), reason in declared.items():
        assert re.fullmatch(r"CKV_AWS_\d+", check_id), check_id
        assert len(reason.split()) >= 8, f"{logical_id} {check_id}: reason too short: {reason!r}"


@every_template
def test_every_checkov_skip_hides_a_real_finding(name, tmp_path):
    # Given the template without its checkov skips (as JSON, which checkov reads as well)
    template = load(name)
    declared = declared_skips(template)
    stripped = json.loads(json.dumps(template))
    for resource in stripped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(stripped))
    # When checkov scans it
    result = run_checkov(path)
    # Then exactly the skipped checks fail: no skip is stale, nothing else is hidden
    assert checks(result, "failed_checks") == set(declared)
