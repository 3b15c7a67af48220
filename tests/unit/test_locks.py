"""The two lock files pin the same versions (the demo's is a subset of the full one)."""

from tests.helpers import REPO


def pins(name: str) -> dict[str, str]:
    lines = (REPO / name).read_text().splitlines()
    pairs = (line.split("==", 1) for line in lines if line and not line.startswith("#"))
    return {package.lower().replace("_", "-"): version for package, version in pairs}


def test_every_dependency_is_pinned_exactly():
    for name in ("requirements.lock", "requirements-demo.lock"):
        for line in (REPO / name).read_text().splitlines():
            assert not line or line.startswith("#") or "==" in line, f"{name}: {line} is not an exact pin"


def test_demo_lock_is_a_subset_of_the_full_lock_with_the_same_versions():
    full, demo = pins("requirements.lock"), pins("requirements-demo.lock")
    assert "moto" in demo and "aws-sam-translator" in demo
    mismatched = {p: (v, full.get(p)) for p, v in demo.items() if full.get(p) != v}
    assert mismatched == {}
