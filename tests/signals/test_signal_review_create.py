"""signals.services.signal_review_create: "mark reviewed" needs a comment, is audited, and is never changed."""

from __future__ import annotations

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.urls import reverse

from signals.choices import SignalTrigger
from signals.models import SignalReview
from signals.services import signal_review_create, signal_run_execute
from tests.conftest import PASSWORD
from tests.signals.conftest import CUTOFF

pytestmark = pytest.mark.django_db


@pytest.fixture
def signal_row(uc_registry):
    run = signal_run_execute(cutoff_on=CUTOFF, trigger=SignalTrigger.COMMAND)
    return run.rows.get(attribute="cell_type", value="umbilical_cord_msc", outcome="infection")


@pytest.mark.parametrize("comment", ["", "   \n ", "looks fine\u202e"])
def test_a_review_without_a_safe_comment_is_refused_and_nothing_is_stored(root, signal_row, comment):
    with pytest.raises(ValidationError) as info:
        signal_review_create(actor=root, row=signal_row, comment=comment)
    assert "comment" in info.value.message_dict
    assert SignalReview.objects.count() == 0


def test_a_clinician_may_not_review(alice, signal_row):
    with pytest.raises(PermissionDenied):
        signal_review_create(actor=alice, row=signal_row, comment="Seen.")
    assert SignalReview.objects.count() == 0


def test_a_review_records_who_when_and_the_comment_in_the_audit_trail(root, signal_row):
    review = signal_review_create(actor=root, row=signal_row, comment="  Line listing checked; lot quarantined.  ")
    assert (review.attribute, review.value, review.outcome) == signal_row.key
    assert (review.row, review.reviewed_by, review.comment) == (
        signal_row,
        root,
        "Line listing checked; lot quarantined.",
    )
    [event] = pghistory.models.Events.objects.tracks(review)
    assert event.pgh_label == "insert"
    assert event.pgh_context["user"] == root.pk and event.pgh_context["action"] == "signal_review_create"
    assert event.pgh_data["comment"] == "Line listing checked; lot quarantined."


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE signals_signalreview SET comment = 'rewritten' WHERE id = %s",
        "DELETE FROM signals_signalreview WHERE id = %s",
    ],
)
def test_a_review_is_never_changed_or_deleted(root, signal_row, statement):
    review = signal_review_create(actor=root, row=signal_row, comment="Seen.")
    with (
        pytest.raises(Exception, match=r"signalreview_never_(updated|deleted)|Cannot (update|delete)"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [review.pk])
    assert SignalReview.objects.get(pk=review.pk).comment == "Seen."


def test_the_admin_form_requires_the_comment_and_the_page_shows_who_when_and_what(client, root, signal_row):
    assert client.login(username="root", password=PASSWORD)
    url = reverse("admin:signals_signalrun_review", args=[signal_row.run_id, signal_row.pk])
    response = client.post(url, {"comment": "  "})
    assert response.status_code == 200 and "Say what was reviewed." in response.content.decode()
    assert SignalReview.objects.count() == 0

    response = client.post(url, {"comment": "Checked the 10 cases: one sterile-processing incident in March."})
    assert response.status_code == 302
    review = SignalReview.objects.get()
    assert review.reviewed_by == root
    page = client.get(response["Location"]).content.decode()
    assert "Checked the 10 cases: one sterile-processing incident in March." in page
    assert f"root, {review.reviewed_at:%Y-%m-%d %H:%M}" in page
    # The review form lists it too.
    assert "Checked the 10 cases" in client.get(url).content.decode()
