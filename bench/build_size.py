"""Row 5. Size of each function's `sam build` output.

`sam build` of template.yaml into a temporary directory (--build-dir, --cache-dir, --no-cached;
SAM_CLI_TELEMETRY=0; the virtual environment's python3.11 on PATH, which SAM uses for the
python3.11 runtime), offline: pip resolves the pinned requirements from the configured wheel
sources. Reported per function: the unpacked directory size (Lambda's limit: 250 MB), the size
as a zip (what is uploaded; deflate level 6), the file count, and the largest top-level entry.
The comparison column is the same function's own code (app.py and the aurelius package).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench import REPO, Row, mib, ratio

FUNCTIONS = {"RedeployServiceFunction": "redeploy_service", "ScheduledRefreshFunction": "scheduled_refresh"}


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under path, following no symlinks."""
    total = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
                files += 1
    return total, files


def zipped_size(path: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for root, _, names in os.walk(path):
            for name in sorted(names):
                file = Path(root) / name
                archive.write(file, file.relative_to(path))
    return buffer.tell()


def largest_entry(path: Path) -> tuple[str, int]:
    sizes = {}
    for entry in path.iterdir():
        sizes[entry.name] = tree_size(entry)[0] if entry.is_dir() else entry.stat().st_size
    name = max(sizes, key=sizes.get)
    return name, sizes[name]


def who_requires(artifact: Path, package: str) -> list[str]:
    """Distributions in the artifact that declare a requirement on package."""
    found = []
    for metadata in artifact.glob("*.dist-info/METADATA"):
        lines = metadata.read_text(errors="replace").splitlines()
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Name:")), metadata.parent.name)
        if any(line.startswith("Requires-Dist:") and line.split(":", 1)[1].strip().lower().startswith(package) for line in lines):
            found.append(name)
    return sorted(found)


def own_code_size(function: str) -> int:
    directory = REPO / "functions" / function
    app = (directory / "app.py").stat().st_size
    core = sum(p.stat().st_size for p in (REPO / "aurelius").rglob("*.py"))
    return app + core


def build(target: Path) -> float:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1", "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    command = [
        str(bin_dir / "sam"), "build", "--template-file", "template.yaml",
        "--build-dir", str(target / "build"), "--cache-dir", str(target / "cache"), "--no-cached",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"sam build exited {done.returncode}: {(done.stdout + done.stderr).strip()[-600:]}")
    return time.perf_counter() - started


def run(**_) -> tuple[list[Row], dict]:
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="aurelius-bench-sam-") as tmp:
        seconds = build(Path(tmp))
        for logical_id, function in FUNCTIONS.items():
            artifact = Path(tmp) / "build" / logical_id
            size, files = tree_size(artifact)
            packed = zipped_size(artifact)
            biggest, biggest_size = largest_entry(artifact)
            own = own_code_size(function)
            rows.append(
                Row(
                    "5",
                    f"`sam build` output of {logical_id} (unpacked; zipped)",
                    f"{mib(size)}; {mib(packed)} zipped; {files:,} files",
                    f"{own / 1024:.0f} KiB of its own code (app.py + aurelius/)",
                    ratio(size, own),
                    f"largest: {biggest}/ {mib(biggest_size)} ({100 * biggest_size / size:.0f} %)"
                    + (f", required by {', '.join(needed)}" if (needed := who_requires(artifact, biggest)) else "")
                    + f"; build took {seconds:.0f} s for both",
                )
            )
            raw[logical_id] = {"bytes": size, "zipped_bytes": packed, "files": files, "largest": [biggest, biggest_size], "own_code_bytes": own}
    return rows, raw
