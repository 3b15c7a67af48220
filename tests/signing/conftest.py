"""Fixtures for the signing tests: the server package on sys.path, keys, a PKI and model files."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from .material import KeyPair, Pki, make_key, make_pki

SERVER_DIR = Path(__file__).resolve().parents[2] / "server"
if str(SERVER_DIR) not in sys.path:
    sys.path.insert(0, str(SERVER_DIR))  # what PYTHONPATH=server does for the model server


@pytest.fixture(scope="session")
def material(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("material")


@pytest.fixture(scope="session")
def key(material) -> KeyPair:
    return make_key(material, "publisher")


@pytest.fixture(scope="session")
def other_key(material) -> KeyPair:
    return make_key(material, "stranger")


@pytest.fixture(scope="session")
def pki(material) -> Pki:
    return make_pki(material / "pki", "operator")


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x05" + bytes(range(256)) * 64 + b".")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tampered_copy(model: Path) -> Path:
    """The model with one byte changed after signing."""
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy = model.with_name("tampered.pkl")
    copy.write_bytes(bytes(data))
    return copy
