"""MedDRA coding fixtures: the synthetic releases of tests/meddra/release (made-up codes, MSSO format)."""

from __future__ import annotations

import pytest

from tests.factories import ProcedureFactory
from tests.meddra.conftest import load


@pytest.fixture
def meddra_27_1(db):
    """Return MedDRA 27.1 (synthetic) loaded."""
    return load("27.1")


@pytest.fixture
def meddra_28_0(meddra_27_1):
    """Return MedDRA 28.0 (synthetic; LLT 94000004 no longer current) loaded beside 27.1."""
    return load("28.0")


@pytest.fixture
def procedure_a(alice, clinic_a):
    """Return a procedure of clinic A (alice's)."""
    return ProcedureFactory(patient__clinic=clinic_a)
