"""API personas: an authenticated APIClient per persona, and one event at each clinic."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import AdverseEventFactory, ProcedureFactory


def api_client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def api_alice(alice):
    return api_client_for(alice)


@pytest.fixture
def api_charlie(charlie):
    return api_client_for(charlie)


@pytest.fixture
def api_root(root):
    return api_client_for(root)


@pytest.fixture
def world(clinic_a, clinic_b, alice, bob, charlie, dora, root):
    """Return one procedure with an adverse event at clinic A and one at clinic B."""
    ae_a = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="Swelling A")
    ae_b = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B")
    return {"a": ae_a, "b": ae_b}
