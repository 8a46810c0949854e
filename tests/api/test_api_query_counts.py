"""List endpoints use a constant number of SQL queries, whatever the page size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/clinics/",
    "/api/v1/patients/",
    "/api/v1/procedures/",
    "/api/v1/follow-up-visits/",
    "/api/v1/adverse-events/",
    "/api/v1/reports/incidence-runs/",
]


def queries_for(client, url, page_size):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, {"page_size": page_size})
    assert response.status_code == 200, response.content[:300]
    return len(ctx.captured_queries), response.json()


@pytest.mark.parametrize("url", LISTS)
def test_a_list_costs_the_same_queries_for_2_or_40_rows(api_alice, clinic_a, url):
    for _ in range(20):
        AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    queries_for(api_alice, url, 2)  # warm per-request caches that are not per-row
    small, small_body = queries_for(api_alice, url, 2)
    large, large_body = queries_for(api_alice, url, 40)
    assert small == large, f"{url}: {small} queries for 2 rows, {large} for 40"
    if url.endswith(("procedures/", "adverse-events/", "follow-up-visits/", "patients/")):
        assert len(large_body["results"]) > len(small_body["results"])
