"""`sam validate --lint` and `sam build` work offline; the built handlers import on their own."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1", "PATH": f"{BIN}:{os.environ['PATH']}"}


def sam(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sam"), *args], cwd=cwd, env=SAM_ENV, capture_output=True, text=True, timeout=300)


def test_sam_validate_lint_passes():
    done = sam("validate", "--lint", "--template-file", "template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("sam-build")
    # Own build and cache directories: xdist workers may build at the same time.
    done = sam("build", "--template-file", "template.yaml", "--build-dir", str(target / "build"), "--no-cached", "--cache-dir", str(target / "cache"))
    assert done.returncode == 0, done.stdout + done.stderr
    return target / "build"


@pytest.mark.parametrize("function", ["RedeployServiceFunction", "ScheduledRefreshFunction"])
def test_built_handler_imports_in_a_clean_interpreter_with_the_core_inside_the_artifact(build_dir, function):
    artifact = build_dir / function
    # -S: no site-packages .pth files, so the editable install of aurelius cannot help; the
    # venv's site-packages is appended last only for boto3, which the Lambda runtime provides.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.append(sys.argv[2]);"
        "import app, aurelius;"
        "assert app.__file__.startswith(sys.argv[1]), app.__file__;"
        "assert aurelius.__file__.startswith(sys.argv[1]), aurelius.__file__;"
        "assert callable(app.lambda_handler); print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, str(artifact), sysconfig.get_paths()["purelib"]],
        cwd=build_dir,
        env={"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
    assert (artifact / "aurelius" / "core" / "reconcile.py").is_file()
    assert (artifact / "aws_lambda_powertools").is_dir()
