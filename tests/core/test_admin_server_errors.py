"""Inputs that made the admin answer 500 in the review: junk action ids, "Show counts", the date
hierarchy, and extra rows posted to an inline that takes none."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from events.models import AdverseEvent
from registry.models import FollowUpVisit
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, ProcedureFactory
from tests.registry.test_admin_fuzz import FormScraper, urlencode

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clinic_a, clinic_b, alice, root):
    """Return one adverse event at each clinic."""
    return {
        "a": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="Swelling A"),
        "b": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B"),
    }


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.parametrize("junk", ["abc", "1.5", "99999999999999999999999", "", "1e3", "0x1"])
def test_a_junk_selected_id_in_an_admin_action_answers_400_and_retracts_nothing(client, alice, world, junk):
    login(client, alice)
    response = client.post(
        reverse("admin:events_adverseevent_changelist"),
        {
            "action": "retract_selected",
            "_selected_action": [str(world["a"].pk), junk],
            "apply": "1",
            "reason": "Entered twice.",
        },
    )
    assert response.status_code == 400
    assert not AdverseEvent.objects.filter(retracted_at__isnull=False).exists()


def test_a_valid_selection_still_reaches_the_action(client, alice, world):
    login(client, alice)
    response = client.post(
        reverse("admin:events_adverseevent_changelist"),
        {
            "action": "retract_selected",
            "_selected_action": [str(world["a"].pk)],
            "apply": "1",
            "reason": "Entered twice.",
        },
    )
    assert response.status_code == 302
    assert list(AdverseEvent.objects.filter(retracted_at__isnull=False)) == [world["a"]]


@pytest.mark.parametrize(
    "changelist",
    ["events_adverseevent", "registry_patient", "registry_procedure", "registry_followupvisit"],
)
def test_show_counts_works_for_a_clinician_on_the_clinic_filtered_changelists(client, alice, world, changelist):
    login(client, alice)
    url = reverse(f"admin:{changelist}_changelist")
    response = client.get(url, {"_facets": "True"})
    assert response.status_code == 200
    # The clinic filter shows her clinic with its count, and never clinic B.
    body = response.content.decode()
    assert re.search(r"A-MAD \(\d+\)", body)
    assert "B-BER" not in body
    # Facets with a chosen clinic, a junk clinic and another clinic's id.
    for value in (world["a"].procedure.clinic_id, "abc", "\u00b2", world["b"].procedure.clinic_id, "9" * 30):
        assert client.get(url, {"_facets": "True", "clinic": value}).status_code == 200


def test_the_clinic_filter_of_the_membership_changelist_counts_for_the_administrator(client, root, world):
    login(client, root)
    response = client.get(reverse("admin:registry_membership_changelist"), {"_facets": "True"})
    assert response.status_code == 200
    assert "A-MAD (1)" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "onset_on__year=99999999999999999999999",
        "onset_on__year=9999",
        "onset_on__year=9999&onset_on__month=12&onset_on__day=31",
        "onset_on__year=2024&onset_on__month=13",
        "onset_on__year=2024&onset_on__month=2&onset_on__day=-1",
        "onset_on__year=%D9%A3",
    ],
)
def test_a_date_hierarchy_value_out_of_range_answers_400(client, alice, world, query):
    login(client, alice)
    response = client.get(reverse("admin:events_adverseevent_changelist") + "?" + query)
    assert response.status_code == 400
    assert "onset_on__" in response.content.decode()


def test_a_date_hierarchy_selection_in_range_lists_the_rows(client, alice, world):
    login(client, alice)
    onset = world["a"].onset_on
    response = client.get(
        reverse("admin:events_adverseevent_changelist"),
        {"onset_on__year": onset.year, "onset_on__month": onset.month, "onset_on__day": onset.day},
    )
    assert response.status_code == 200
    assert world["a"].external_id in response.content.decode()


def test_visit_rows_posted_to_the_procedure_page_are_not_added(client, alice, world):
    login(client, alice)
    procedure = world["a"].procedure
    url = reverse("admin:registry_procedure_change", args=[procedure.pk])
    scraper = FormScraper("procedure_form")
    scraper.feed(client.get(url).content.decode())
    fields = dict(scraper.fields)
    prefix = next(
        name.removesuffix("-TOTAL_FORMS")
        for name in fields
        if name.endswith("-TOTAL_FORMS") and name.startswith("visits")
    )
    total = int(fields[f"{prefix}-TOTAL_FORMS"])
    forged = (
        [(f"{prefix}-TOTAL_FORMS", str(total + 1))]
        + [(name, value) for name, value in scraper.fields if name != f"{prefix}-TOTAL_FORMS"]
        + [(f"{prefix}-{total}-completed_on", "2024-05-01"), (f"{prefix}-{total}-procedure", str(procedure.pk))]
    )
    visits = sorted(FollowUpVisit.objects.filter(procedure=procedure).values_list("pk", "version"))
    response = client.post(url, data=urlencode(forged), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302
    assert sorted(FollowUpVisit.objects.filter(procedure=procedure).values_list("pk", "version")) == visits


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("event_model=1.5", 200),
        ("event_model=no.such", 200),
        ("_facets=True", 200),
        ("label=x&_facets=True", 200),
        ("obj=registry.patient:abc&method=tracks", 404),
        ("obj=registry.patient:999999", 404),
    ],
)
def test_the_audit_trail_changelist_survives_junk_query_strings(client, root, world, query, status):
    login(client, root)
    response = client.get(reverse("admin:pghistory_events_changelist") + "?" + query)
    assert response.status_code == status


def test_the_audit_trail_back_link_only_points_into_the_site(client, root, world):
    login(client, root)
    patient = world["a"].procedure.patient
    url = reverse("admin:pghistory_events_changelist")
    response = client.get(url, {"obj": f"registry.patient:{patient.pk}", "back": "javascript:alert(1)"})
    assert response.status_code == 200
    assert "javascript:" not in response.content.decode()
    response = client.get(url, {"obj": f"registry.patient:{patient.pk}", "back": "/admin/registry/patient/"})
    assert 'href="/admin/registry/patient/" class="back"' in response.content.decode()


def test_the_lockout_cleanup_action_runs(client, world):
    from axes.models import AccessAttempt

    from tests.conftest import confirmed_device
    from tests.factories import UserFactory

    superuser = UserFactory(username="tech", is_staff=True, is_superuser=True)
    confirmed_device(superuser)
    login(client, superuser)
    attempt = AccessAttempt.objects.create(username="mallory", ip_address="10.0.0.1", user_agent="x",
                                           failures_since_start=1, get_data="", post_data="", http_accept="x",
                                           path_info="/admin/login/")  # fmt: skip
    response = client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "cleanup_expired_attempts", "_selected_action": [str(attempt.pk)], "index": "0"},
    )
    assert response.status_code == 302
