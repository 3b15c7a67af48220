"""Row 5. Size of each function's `sam build` output, next to the 1 MiB (zipped) goal.

`sam build` of template.yaml into a temporary directory (--build-dir, --cache-dir, --no-cached;
SAM_CLI_TELEMETRY=0), offline. Each function is built by functions/build-function.mk (Metadata
BuildMethod: makefile), which copies the handler and the aurelius core; powertools comes from
its public layer and boto3 from the runtime, so nothing is installed. Reported per function:
the unpacked size (Lambda's limit: 250 MB), the size as a zip (what is uploaded; deflate
level 6), the file count, the largest top-level entry and any third-party package found inside.
The comparison column is issue 12's goal: at most 1 MiB zipped per function.
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
GOAL_ZIPPED = 2**20  # issue 12: at most 1 MiB zipped per function


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


def third_party(artifact: Path) -> list[str]:
    """Installed distributions inside the artifact (pip leaves a .dist-info per package)."""
    return sorted(path.name for path in artifact.glob("*.dist-info"))


def kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 2**20 else mib(size)


def build(target: Path) -> float:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
    }
    command = [
        str(bin_dir / "sam"), "build", "--template-file", "template.yaml",
        "--build-dir", str(target / "build"), "--cache-dir", str(target / "cache"), "--no-cached",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"sam build exited {done.returncode}: {(done.stdout + done.stderr).strip()[-600:]}")
    return time.perf_counter() - started


def run(**_) -> tuple[list[Row], dict]:
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="aurelius-bench-sam-") as tmp:
        seconds = build(Path(tmp))
        for logical_id in FUNCTIONS:
            artifact = Path(tmp) / "build" / logical_id
            size, files = tree_size(artifact)
            packed = zipped_size(artifact)
            biggest, biggest_size = largest_entry(artifact)
            packages = third_party(artifact)
            rows.append(
                Row(
                    "5",
                    f"`sam build` output of {logical_id} (zipped; unpacked)",
                    f"{kib(packed)} zipped; {kib(size)} unpacked; {files:,} files",
                    f"{mib(GOAL_ZIPPED)} zipped (goal)",
                    ratio(packed, GOAL_ZIPPED),
                    f"largest: {biggest}{'/' if (artifact / biggest).is_dir() else ''} {kib(biggest_size)} ({100 * biggest_size / size:.0f} %); "
                    f"third-party packages inside: {', '.join(packages) or 'none'}; build took {seconds:.0f} s for both",
                )
            )
            raw[logical_id] = {
                "bytes": size,
                "zipped_bytes": packed,
                "files": files,
                "largest": [biggest, biggest_size],
                "third_party": packages,
            }
    return rows, raw
