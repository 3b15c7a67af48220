"""The S3 layout of signatures: one definition on the operator side, the same key on the server."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurelius.core import signature_layout as layout
from aurelius_server import signature as server_signature

KEY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=200
)
DIGESTS = st.binary(min_size=0, max_size=64).map(lambda data: hashlib.sha256(data).hexdigest())


def test_signature_key_is_the_model_key_then_sig_then_the_digest():
    # Given a model key and the sha256 of its bytes
    digest = hashlib.sha256(b"model").hexdigest()
    # When the signature key is computed / Then it is the documented sidecar name
    assert layout.signature_key("models/model.pkl", digest) == f"models/model.pkl.sig/{digest}"
    assert layout.signature_prefix("models/model.pkl") == "models/model.pkl.sig/"


@given(model_key=KEY_TEXT, digest=DIGESTS)
def test_the_server_and_the_operator_side_compute_the_same_signature_key(model_key, digest):
    # Given any model key and digest / When both sides name the signature object / Then they agree
    assert server_signature.signature_key(model_key, digest) == layout.signature_key(model_key, digest)


@pytest.mark.parametrize("bad", ["", "ABC", "g" * 64, "A" * 64, "0" * 63, "0" * 65, None])
def test_a_value_that_is_not_a_lower_case_sha256_cannot_name_a_signature(bad):
    # Given something that is not a sha256 hex digest / When naming its signature / Then both sides refuse
    with pytest.raises(layout.LayoutError, match="not a sha256 digest"):
        layout.signature_key("models/model.pkl", bad)
    with pytest.raises(ValueError, match="not a sha256 digest"):
        server_signature.signature_key("models/model.pkl", bad)


def test_a_model_key_too_long_for_its_signature_key_is_refused_with_the_limit():
    # Given a model key so long that appending .sig/<64 hex> passes S3's 1024-byte limit
    digest = hashlib.sha256(b"x").hexdigest()
    longest = "k" * (layout.MAX_KEY_BYTES - len(layout.SIGNATURE_INFIX) - 64)
    # Then the longest allowed key works and one byte more is refused, naming the maximum
    assert len(layout.signature_key(longest, digest).encode()) == layout.MAX_KEY_BYTES
    with pytest.raises(layout.LayoutError, match=f"at most {len(longest)} bytes"):
        layout.signature_key(longest + "k", digest)


def test_the_metadata_digest_is_read_back_and_anything_else_is_ignored():
    digest = hashlib.sha256(b"model").hexdigest()
    # Given HeadObject metadata with, without, or with a broken digest
    assert layout.sha256_from_metadata({layout.SHA256_METADATA_KEY: digest}) == digest
    assert layout.sha256_from_metadata({layout.SHA256_METADATA_KEY: digest.upper()}) == digest
    assert layout.sha256_from_metadata({}) is None
    assert layout.sha256_from_metadata(None) is None
    assert layout.sha256_from_metadata({layout.SHA256_METADATA_KEY: "not-a-digest"}) is None


@given(data=st.binary(max_size=256))
def test_checksum_sha256_is_what_s3_stores_and_converts_back(data):
    # Given some bytes, their hex digest and S3's ChecksumSHA256 (base64 of the raw digest)
    digest = hashlib.sha256(data)
    # When converting / Then the two forms agree both ways
    assert layout.checksum_sha256(digest.hexdigest()) == base64.b64encode(digest.digest()).decode()
    assert layout.sha256_hex_from_checksum(layout.checksum_sha256(digest.hexdigest())) == digest.hexdigest()


def test_a_composite_or_malformed_checksum_gives_no_digest():
    # Given a multipart (composite) checksum and garbage / Then no digest is claimed
    assert layout.sha256_hex_from_checksum("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=-3") is None
    assert layout.sha256_hex_from_checksum("!!!") is None
    assert layout.sha256_hex_from_checksum(base64.b64encode(b"short").decode()) is None


def imported_modules(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_layout_module_is_pure_and_the_server_modules_ship_without_aurelius():
    import sys

    from .conftest import SERVER_DIR

    # Given the operator-side layout (in the Lambda core) and the server's signing modules
    layout_imports = imported_modules(SERVER_DIR.parent / "aurelius" / "core" / "signature_layout.py")
    server_imports = imported_modules(SERVER_DIR / "aurelius_server" / "signature.py") | imported_modules(
        SERVER_DIR / "aurelius_server" / "pickle_scan.py"
    )
    # Then the layout needs only the standard library (no model_signing in the Lambda artifact)
    assert layout_imports <= set(sys.stdlib_module_names) | {"__future__"}
    # And the server modules never import the operator package (the image ships without it)
    assert "aurelius" not in server_imports
