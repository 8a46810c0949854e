"""The export log: append-only, audited, visible to registry administrators only."""

from __future__ import annotations

import pytest
from django.core.signals import request_finished
from django.db import DatabaseError, close_old_connections, transaction
from pghistory.models import Events
from rest_framework.test import APIRequestFactory, force_authenticate

from reports.exports import streaming
from reports.exports.models import ExportLog
from reports.exports.views import AdverseEventLineListing
from tests.api import conftest as api_conftest
from tests.api.conftest import api_client_for
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
world = api_conftest.world  # one event at clinic A, one at clinic B (tests/api/conftest.py)

URL = "/api/v1/exports/adverse-events.csv?purpose=Audit+of+the+export+log"


@pytest.fixture
def finished_log(world, root):
    response = api_client_for(root).get(URL)
    b"".join(response.streaming_content)
    return ExportLog.objects.get()


def test_a_finished_entry_cannot_be_updated(finished_log):
    with pytest.raises(DatabaseError, match="Cannot update"), transaction.atomic():
        ExportLog.objects.filter(pk=finished_log.pk).update(row_count=0)
    finished_log.refresh_from_db()
    assert finished_log.row_count == 2


def test_an_entry_cannot_be_deleted(finished_log):
    with pytest.raises(DatabaseError, match="Cannot delete"), transaction.atomic():
        ExportLog.objects.filter(pk=finished_log.pk).delete()
    assert ExportLog.objects.filter(pk=finished_log.pk).exists()


def test_the_insert_and_the_row_count_are_in_the_audit_trail(finished_log):
    labels = list(
        Events.objects.references(finished_log).order_by("pgh_created_at", "pgh_id").values_list("pgh_label", flat=True)
    )
    assert labels == ["insert", "update"]


def test_a_download_abandoned_mid_copy_leaves_the_entry_open_and_the_connection_usable(world, root, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1)  # one chunk per row: stop between the two rows
    request = APIRequestFactory().get(URL)
    force_authenticate(request, user=root)
    response = AdverseEventLineListing.as_view()(request)
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"registry_id,")
    assert next(chunks).count(b"\n") == 1
    # What the WSGI server does when the client goes away (the test keeps its connection
    # across request_finished, as the test client does for the responses it closes).
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    assert ExportLog.objects.get().row_count is None


def test_only_registry_administrators_see_the_export_log_in_the_admin(finished_log, client):
    assert client.login(username="root", password=PASSWORD)
    assert client.get("/admin/reports/exportlog/").status_code == 200
    assert client.get(f"/admin/reports/exportlog/{finished_log.pk}/change/").status_code == 200
    assert client.post(f"/admin/reports/exportlog/{finished_log.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ExportLog.objects.filter(pk=finished_log.pk).exists()

    for clinician in ("alice", "dora"):
        assert client.login(username=clinician, password=PASSWORD)
        assert client.get("/admin/reports/exportlog/").status_code == 403
        assert client.get(f"/admin/reports/exportlog/{finished_log.pk}/change/").status_code in (302, 403, 404)
