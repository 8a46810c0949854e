"""The synthetic MedDRA releases (release/README.md: made-up codes and names, MSSO file format) and loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meddra.loader import load_release

RELEASE = Path(__file__).resolve().parent / "release"
RELEASE_27_1 = RELEASE / "27.1"
RELEASE_28_0 = RELEASE / "28.0"


def load(version: str, directory: Path | None = None, user=None):
    """Load a synthetic release (27.1 or 28.0 by default) as ``version``; return the loader's summary."""
    return load_release(directory=directory or RELEASE / version, version=version, user=user)


@pytest.fixture
def meddra_27_1(db):
    """Return MedDRA 27.1 (synthetic) loaded."""
    return load("27.1")


@pytest.fixture
def meddra_28_0(meddra_27_1):
    """Return MedDRA 28.0 (synthetic: 94000004 "Synthetic knee swelling" no longer current) loaded beside 27.1."""
    return load("28.0")


@pytest.fixture
def release_copy(tmp_path) -> Path:
    """Return a writable copy of the synthetic 28.0 release, to break."""
    target = tmp_path / "MedAscii"
    shutil.copytree(RELEASE_28_0, target)
    return target
