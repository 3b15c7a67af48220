"""Row 8. Model signing: signing time, verification cost, loading with verification vs without.

A pickled model of 200 MiB (`--model-mib`; a dict holding that many random bytes) is written
under $TMPDIR with a fresh ECDSA P-256 key, and deleted at the end. In one process:

- signing: `aurelius.signing.sign_file` (model-signing's own sha256 pass over the file, then
  the ECDSA signature over the in-toto statement), median of 3, next to one plain `hashlib`
  sha256 pass over the same file: signing is a hashing pass plus a constant.
- verification: `verify_digest` of the bundle over the precomputed digest (no file read),
  median of 50 after one warm-up call; and, in a fresh interpreter, the one-off import of the
  server's signature module with model-signing's verifier (paid once at server start).
- the pickle scan (`pickle_scan.scan`) of the same file, median of 3, next to the load.
- loading, same run, interleaved, after one warm-up, median of 5 each. The download's stand-in
  is a copy of the file to a new temporary file in 8 MiB pieces (the server streams S3's body
  to a file), then `pickle.load`. "without verification" computes sha256 in the copy pass, as
  the server's download does anyway (it checks S3's stored checksum and names the bytes it
  loaded); "with verification" adds reading the signature bundle and `verify_digest` over that
  digest. Goal: with ÷ without <= 1.10. A third variant that does not hash at all shows what
  the hashing pass itself costs on this machine (a local copy is faster than a download from
  S3, so here hashing weighs more than it would there).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import REPO, Row, ratio

MIB = 1024 * 1024
PIECE = 8 * MIB  # the loader's S3 range size


def _server_on_path() -> None:
    server = str(REPO / "server")
    if server not in sys.path:
        sys.path.insert(0, server)


def _timed(call) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _sha256_pass(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


def _copy(source: Path, target: Path, digest: Any | None) -> None:
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while piece := reader.read(PIECE):
            writer.write(piece)
            if digest is not None:
                digest.update(piece)


def _load(source: Path, work: Path, variant: str, bundle_path: Path, trust: Any) -> float:
    """One load: "plain" (no hashing), "hashed" (sha256 in the copy pass) or "verified" (+ verify_digest)."""
    from aurelius_server.signature import verify_digest

    target = work / "downloaded.pkl"
    started = time.perf_counter()
    digest = None if variant == "plain" else hashlib.sha256()
    _copy(source, target, digest)
    if variant == "verified":
        verify_digest(digest.hexdigest(), bundle_path.read_bytes(), trust)
    with open(target, "rb") as handle:
        model = pickle.load(handle)
    seconds = time.perf_counter() - started
    del model
    target.unlink()
    return seconds


def _import_seconds() -> float:
    code = (
        "import time; started = time.perf_counter(); "
        "from aurelius_server import signature; "
        "from model_signing._signing import sign_ec_key, sign_sigstore_pb; from model_signing import manifest; "
        "print(time.perf_counter() - started)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "server"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def run(model_mib: int = 200, **_: Any) -> tuple[list[Row], dict]:
    _server_on_path()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from aurelius.signing import KeySigner, sign_file
    from aurelius_server import pickle_scan
    from aurelius_server.signature import parse_trust, verify_digest

    work = Path(tempfile.mkdtemp(prefix="aurelius-bench-signing-"))
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        private = work / "key.pem"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        trust = parse_trust(json.dumps({"mode": "key", "public_keys": [public.decode()]}))
        model = work / "model.pkl"
        with open(model, "wb") as handle:
            pickle.dump({"weights": os.urandom(model_mib * MIB)}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        size = model.stat().st_size

        sign_file(model, KeySigner(private))  # warm-up: imports, page cache
        signing, hashing, signed = [], [], None
        for _ in range(3):
            seconds, signed = _timed(lambda: sign_file(model, KeySigner(private)))
            signing.append(seconds)
            hashing.append(_timed(lambda: _sha256_pass(model))[0])
        assert signed is not None and signed.sha256 == _sha256_pass(model)

        verify_digest(signed.sha256, signed.bundle, trust)  # warm-up
        verify = [_timed(lambda: verify_digest(signed.sha256, signed.bundle, trust))[0] for _ in range(50)]
        import_seconds = _import_seconds()

        bundle_path = work / "model.pkl.sig"
        bundle_path.write_bytes(signed.bundle)
        loads: dict[str, list[float]] = {"plain": [], "hashed": [], "verified": []}
        for variant in loads:
            _load(model, work, variant, bundle_path, trust)  # warm-up
        for _ in range(5):
            for variant, times in loads.items():
                times.append(_load(model, work, variant, bundle_path, trust))
        scans = [_timed(lambda: pickle_scan.scan(str(model), "pickle"))[0] for _ in range(3)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    sign_s, hash_s = statistics.median(signing), statistics.median(hashing)
    verify_s = statistics.median(verify)
    load_plain, load_without, load_with = (statistics.median(loads[v]) for v in ("plain", "hashed", "verified"))
    load_ratio = load_with / load_without
    rows = [
        Row(
            "8",
            f"signing a {size / MIB:.0f} MiB model (sign_file, ECDSA P-256), median of 3",
            f"{sign_s:.2f} s",
            f"{hash_s:.2f} s (one hashlib sha256 pass over the file)",
            ratio(sign_s, hash_s),
            "signing = model-signing's hashing pass + one signature",
        ),
        Row(
            "8",
            "verify_digest over the precomputed digest (no file read), median of 50",
            f"{verify_s * 1000:.2f} ms",
            f"{import_seconds:.2f} s one-off import at server start (fresh interpreter)",
            "n/a",
            "the import is paid once per process, before the download",
        ),
        Row(
            "8",
            f"loading the {size / MIB:.0f} MiB model (copy as the download + pickle.load), median of 5 each",
            f"{load_with:.2f} s with verification (sha256 in the copy pass + verify_digest)",
            f"{load_without:.2f} s without (sha256 in the copy pass, no signature)",
            ratio(load_with, load_without),
            f"goal <= 1.10: {'met' if load_ratio <= 1.10 else 'NOT met'}; one hashing pass, during the download",
        ),
        Row(
            "8",
            "the hashing pass itself: the same load with sha256 vs without any hashing",
            f"{load_without:.2f} s with sha256",
            f"{load_plain:.2f} s without hashing",
            ratio(load_without, load_plain),
            "a local copy runs at memory speed; a download from S3 is slower, so hashing weighs less there",
        ),
        Row(
            "8",
            f"pickle scan (picklescan opcode walk) of the {size / MIB:.0f} MiB model, median of 3",
            f"{statistics.median(scans):.2f} s",
            f"{load_without:.2f} s (the load without verification, above)",
            ratio(statistics.median(scans), load_without),
            "a second read of the file, before deserialising; it holds each pickled bytes object in memory "
            "while it walks past it",
        ),
    ]
    return rows, {
        "sign": signing,
        "hash": hashing,
        "verify_ms": verify_s * 1000,
        "loads": loads,
        "scan": scans,
        "import": import_seconds,
    }


if __name__ == "__main__":
    rows, raw = run(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    for row in rows:
        print(row)
    print(json.dumps(raw))
