"""Shared fixtures: the oracle photos, the reference (face_recognition on dlib) and the CLI.

Data and reference are found beside the checkout (``../shared``, or ``VISAGE_SHARED``). In a
user's clone without them the tests that need them skip; with ``VISAGE_REQUIRE_DATA=1`` (CI)
a missing piece fails them instead.
"""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("VISAGE_SHARED") or ROOT.parent / "shared")
ORACLE = SHARED / "oracle"
REQUIRE = os.environ.get("VISAGE_REQUIRE_DATA") == "1"


def missing(what: str):
    if REQUIRE:
        pytest.fail(f"{what} (VISAGE_REQUIRE_DATA=1: required)", pytrace=False)
    pytest.skip(what)


def oracle_images():
    d = ORACLE / "images"
    return sorted(p for p in d.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if d.is_dir() else []


@pytest.fixture(scope="session")
def fr():
    """The reference: the real face_recognition package (dlib) in this environment."""
    try:
        import face_recognition  # noqa: F401
    except Exception as e:  # ImportError, or dlib failing to load
        missing(f"face_recognition (the reference) cannot be imported: {e}")
    import face_recognition

    return face_recognition


@pytest.fixture(scope="session")
def vc():
    """visage.compat, models loaded."""
    import visage
    import visage.compat as c

    try:
        c._get_engine()
    except visage.ModelsMissingError as e:
        missing(f"visage models: {e}")
    return c


@pytest.fixture(scope="session")
def photos():
    imgs = oracle_images()
    if len(imgs) < 8:
        missing(f"the oracle photos in {ORACLE / 'images'}")
    return imgs


@pytest.fixture(scope="session")
def cli():
    """The visage command line of this checkout (VISAGE_BIN overrides)."""
    b = os.environ.get("VISAGE_BIN") or str(ROOT / "target" / "release" / "visage")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        found = shutil.which("visage")
        if not found:
            missing(f"the visage binary ({b}; build it with cargo build --release -p visage-cli)")
        b = found
    return b
