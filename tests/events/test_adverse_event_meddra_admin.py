"""The admin codes an event by typing the verbatim term: autocomplete over the newest version's current LLT names."""

from __future__ import annotations

import pytest
from django.urls import reverse

from events.admin import AdverseEventAdmin
from events.models import AdverseEvent
from tests.conftest import PASSWORD, login_password_only
from tests.factories import AdverseEventFactory

pytestmark = pytest.mark.django_db

TERMS = "/admin/events/adverseevent/meddra-terms/"


def _form_data(ae, **changes) -> dict:
    data = {
        "external_id": ae.external_id,
        "procedure": ae.procedure_id,
        "category": ae.category,
        "term": ae.term,
        "meddra_code": ae.meddra_code,
        "onset_on": ae.onset_on.isoformat(),
        "grade": ae.grade,
        "outcome": ae.outcome,
        "resolved_on": ae.resolved_on.isoformat() if ae.resolved_on else "",
        "expected_version": ae.version,
    }
    return {**data, **changes}


def _terms(client, **query) -> dict:
    response = client.get(TERMS, query)
    assert response.status_code == 200, response.content[:500]
    return response.json()


def test_the_term_search_lists_current_llts_of_the_newest_version_prefix_first(client, alice, meddra_28_0):
    assert client.login(username="alice", password=PASSWORD)
    found = _terms(client, term="  injection ")
    # 94000002 "Synthetic injection site soreness" is non-current; nothing else names "injection".
    assert found == {
        "results": [
            {"id": "93000001", "text": "Synthetic injection site pain (93000001)"},
            {"id": "94000001", "text": "Synthetic pain at injection site (94000001)"},
        ],
        "pagination": {"more": False},
    }
    first = _terms(client, term="synthetic knee")["results"]
    assert first == []  # 94000004 "Synthetic knee swelling" is non-current in 28.0, the newest version
    swelling = [r["id"] for r in _terms(client, term="SWELLING")["results"]]
    assert swelling == ["93000003"]
    # Every word typed starts a word of the name, in any order; a name starting with the whole term comes first.
    ids = [r["id"] for r in _terms(client, term="site inj")["results"]]
    assert ids == ["93000001", "94000001"]
    ids = [r["id"] for r in _terms(client, term="synthetic s")["results"]]
    assert ids == ["93000002", "94000003", "93000001", "93000003", "94000001"]  # septic first, then A to Z
    assert [r["id"] for r in _terms(client, term="arthr")["results"]] == ["93000002"]
    assert _terms(client, term="rthritis")["results"] == []  # word starts only
    assert _terms(client, term="'&|!:*()")["results"] == _terms(client, term="")["results"]  # no words: all, A to Z


def test_the_term_search_pages(client, alice, meddra_27_1, monkeypatch):
    monkeypatch.setattr(AdverseEventAdmin, "MEDDRA_TERMS_PAGE", 4)
    assert client.login(username="alice", password=PASSWORD)
    page1, page2 = _terms(client, term="synthetic"), _terms(client, term="synthetic", page="2")
    ids = [r["id"] for r in page1["results"] + page2["results"]]
    # The six current LLTs of 27.1, alphabetically by name (every name starts with the term).
    assert ids == ["94000003", "93000001", "93000003", "94000004", "94000001", "93000002"]
    assert (page1["pagination"]["more"], page2["pagination"]["more"]) == (True, False)
    assert _terms(client, term="synthetic", page="junk")["results"] == page1["results"]


def test_the_term_search_answers_nothing_without_a_dictionary(client, alice):
    assert client.login(username="alice", password=PASSWORD)
    assert _terms(client, term="pain") == {"results": [], "pagination": {"more": False}}


def test_the_term_search_needs_a_verified_staff_session(client, alice, meddra_27_1):
    anonymous = client.get(TERMS, {"term": "pain"})
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    login_password_only(client, alice)  # password given, second factor not
    half = client.get(TERMS, {"term": "pain"})
    assert half.status_code == 302
    assert "/admin/login/" in half["Location"]


def test_dictionary_terms_are_not_clinical_data_but_the_search_writes_nothing(client, charlie, meddra_27_1):
    assert client.login(username="charlie", password=PASSWORD)
    assert [r["id"] for r in _terms(client, term="pain")["results"]] == ["93000001", "94000001"]
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(TERMS, {"term": "pain"}).status_code == 405


def test_the_event_form_offers_the_term_picker_with_the_chosen_term(client, alice, meddra_27_1, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    assert client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("admin:events_adverseevent_change", args=[event.pk])).content.decode()
    assert f'data-ajax--url="{TERMS}"' in page
    assert "admin-autocomplete" in page
    assert '<option value="94000001" selected>Synthetic pain at injection site (94000001)</option>' in page
    assert "admin/js/autocomplete.js" in page
    # The derived coding is shown, read-only.
    assert "PT Synthetic injection site pain (93000001)" in page
    assert "primary SOC Synthetic general disorders and administration site conditions (90000001)" in page


def test_without_a_dictionary_the_form_keeps_the_plain_code_field(client, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="10040047")
    assert client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("admin:events_adverseevent_change", args=[event.pk])).content.decode()
    assert TERMS not in page
    assert 'name="meddra_code" value="10040047"' in page


def test_saving_a_picked_term_codes_the_event(client, alice, meddra_27_1, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, category="infection")
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("admin:events_adverseevent_change", args=[event.pk])
    response = client.post(url, _form_data(event, meddra_code="94000003"))
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = AdverseEvent.objects.get(pk=event.pk)
    assert (stored.meddra_code, stored.meddra_pt_code, stored.meddra_soc_code, stored.meddra_version) == (
        "94000003",
        "93000002",
        "90000002",
        "27.1",
    )


@pytest.mark.parametrize("code", ["94000002", "99999999"], ids=["non-current", "unknown"])
def test_a_non_current_or_unknown_code_is_an_error_on_the_field_and_changes_nothing(
    client, alice, meddra_27_1, procedure_a, code
):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(
        reverse("admin:events_adverseevent_change", args=[event.pk]), _form_data(event, meddra_code=code, grade=2)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["meddra_code"] == [
        "Not a current lowest level term of the MedDRA dictionary (MedDRA 27.1)."
    ]
    stored = AdverseEvent.objects.get(pk=event.pk)
    assert (stored.meddra_code, stored.grade, stored.version) == ("94000001", 1, 1)


def test_the_procedure_page_codes_its_events_the_same_way(client, alice, meddra_27_1, procedure_a):
    AdverseEventFactory(procedure=procedure_a, meddra_code="93000003")
    assert client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("admin:registry_procedure_change", args=[procedure_a.pk])).content.decode()
    assert f'data-ajax--url="{TERMS}"' in page
    assert '<option value="93000003" selected>Synthetic joint swelling (93000003)</option>' in page
