"""Ids, codes and free text refuse invisible characters at input; MedDRA codes have their shape (Hardening 8, 9).

A control character in an event id (accepted until now) made every XLSX covering the event
answer 500. Ids and codes now refuse control, bidi and zero-width characters field by field
(API 400 naming the field, model validation for the admin) and a named CHECK constraint
refuses them in the database whatever writes; free text keeps tabs and line breaks.
"""

from __future__ import annotations

import unicodedata

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from core.text import (
    UNSAFE_CODEPOINT_RANGES,
    UNSAFE_FREE_TEXT_CLASS,
    UNSAFE_IDENTIFIER_CLASS,
    validate_safe_free_text,
    validate_safe_identifier,
)
from events.models import AdverseEvent
from registry.models import FollowUpVisit, Procedure
from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/adverse-events/"
PROCEDURES = "/api/v1/procedures/"
INVISIBLE = {
    "control": "AE-\u0001-X",
    "bidi override": "AE-\u202e-X",
    "bidi isolate": "AE-\u2066-X",
    "zero-width space": "AE-\u200b-X",
    "byte-order mark": "\ufeffAE-1",
    "tag character": "AE-\U000e0041",
    "line separator": "AE-\u2028-X",
}


def _event_body(procedure, **changes) -> dict:
    body = {
        "procedure": procedure.external_id,
        "category": "injection_site_reaction",
        "term": "Injection site pain",
        "onset_on": procedure.performed_on.isoformat(),
        "grade": 1,
        "outcome": "recovered",
        "resolved_on": procedure.performed_on.isoformat(),
    }
    return {**body, **changes}


def _attrs(response) -> list[str]:
    assert response.status_code == 400, response.content
    return [error["attr"] for error in response.json()["errors"]]


@pytest.fixture
def procedure(alice, clinic_a):
    return ProcedureFactory(patient__clinic=clinic_a)


@pytest.mark.parametrize("event_id", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_event_id_with_an_invisible_character_is_a_field_error_and_creates_nothing(alice, procedure, event_id):
    response = api_client_for(alice).post(EVENTS, _event_body(procedure, event_id=event_id), format="json")
    assert _attrs(response) == ["event_id"]
    detail = response.json()["errors"][0]["detail"]
    assert f"U+{ord(next(c for c in event_id if not c.isalnum() and c != '-')):04X}" in detail
    assert not AdverseEvent.objects.exists()


def test_a_visible_event_id_is_still_accepted(alice, procedure):
    response = api_client_for(alice).post(EVENTS, _event_body(procedure, event_id="AE-2024/0001 (b)"), format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(("field", "value"), [("procedure_id", "PR-\u0007"), ("product_lot", "LOT\u202e7")])
def test_a_procedure_id_or_lot_with_an_invisible_character_is_a_field_error(alice, procedure, field, value):
    body = {
        "patient": procedure.patient.registry_id,
        "performed_on": "2024-06-01",
        "site": "knee",
        "laterality": "left",
        "cell_source": "autologous",
        "cell_type": "bmac",
        field: value,
    }
    before = Procedure.objects.count()
    assert _attrs(api_client_for(alice).post(PROCEDURES, body, format="json")) == [field]
    assert Procedure.objects.count() == before


@pytest.mark.parametrize("code", ["1002208", "100220860", "1002208A", "ABCDEFGH", "1002 2086", "\uff11" * 8])
def test_a_meddra_code_that_is_not_eight_digits_is_a_field_error(alice, procedure, code):
    response = api_client_for(alice).post(EVENTS, _event_body(procedure, meddra_code=code), format="json")
    assert _attrs(response) == ["meddra_code"]
    assert not AdverseEvent.objects.exists()


@pytest.mark.parametrize("code", ["10022086", ""])
def test_an_eight_digit_or_empty_meddra_code_is_accepted(alice, procedure, code):
    response = api_client_for(alice).post(EVENTS, _event_body(procedure, meddra_code=code), format="json")
    assert response.status_code == 201, response.json()
    assert AdverseEvent.objects.get().meddra_code == code


def test_free_text_keeps_tabs_and_line_breaks_but_refuses_bidi_overrides(alice, procedure):
    client = api_client_for(alice)
    ok = client.post(EVENTS, _event_body(procedure, term="Swelling\tleft knee\nresolved"), format="json")
    assert ok.status_code == 201, ok.json()
    bad = client.post(EVENTS, _event_body(procedure, term="Swelling \u202eeenk tfel"), format="json")
    assert _attrs(bad) == ["term"]
    assert AdverseEvent.objects.count() == 1


def test_visit_notes_and_a_retraction_reason_refuse_invisible_characters(alice, procedure):
    client = api_client_for(alice)
    visit = procedure.visits.get(visit="month_1")
    url = f"/api/v1/follow-up-visits/{visit.pk}/"
    response = client.patch(url, {"notes": "called\u0007twice"}, format="json", HTTP_IF_MATCH=f'"{visit.version}"')
    assert _attrs(response) == ["notes"]
    assert FollowUpVisit.objects.get(pk=visit.pk).notes == ""

    event = AdverseEventFactory(procedure=procedure)
    response = client.post(f"{EVENTS}{event.pk}/retract/", {"reason": "dup\u200blicate"}, format="json")
    assert _attrs(response) == ["reason"]
    event.refresh_from_db()
    assert event.retracted_at is None


def test_model_validation_names_the_field_as_the_admin_form_shows_it(procedure):
    event = AdverseEvent(
        procedure=procedure,
        external_id="AE-\u0001-X",
        category="injection_site_reaction",
        term="pain",
        meddra_code="123",
        onset_on=procedure.performed_on,
        grade=1,
    )
    with pytest.raises(ValidationError) as caught:
        event.full_clean()
    assert {"external_id", "meddra_code"} <= set(caught.value.message_dict)


@pytest.mark.parametrize(
    ("table", "column", "value", "constraint"),
    [
        ("events_adverseevent", "external_id", "AE-\u0001-X", "ae_external_id_safe"),
        ("events_adverseevent", "external_id", "AE-\u202e-X", "ae_external_id_safe"),
        ("events_adverseevent", "meddra_code", "1234", "ae_meddra_code_shape"),
        ("events_adverseevent", "meddra_code", "10022086\n", "ae_meddra_code_shape"),
        ("registry_patient", "registry_id", "P-\u200bX", "patient_registry_id_safe"),
        ("registry_procedure", "external_id", "PR-\u0085", "procedure_external_id_safe"),
        ("registry_procedure", "product_lot", "LOT-\ufeff", "procedure_product_lot_safe"),
        ("registry_procedure", "operator", "OP\t1", "procedure_operator_safe"),
    ],
)
def test_the_database_refuses_what_bypasses_validation(procedure, table, column, value, constraint):
    AdverseEventFactory(procedure=procedure)
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s", [value])  # noqa: S608 - test constants
    assert caught.value.__cause__.diag.constraint_name == constraint


def test_the_database_keeps_visible_ids_and_an_empty_meddra_code(procedure):
    event = AdverseEventFactory(procedure=procedure, external_id="AE-ÄÖ-2024/1", meddra_code="")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE events_adverseevent SET meddra_code = '10022086' WHERE id = %s", [event.pk])
    assert AdverseEvent.objects.get(pk=event.pk).meddra_code == "10022086"


def _code_points():
    for start, end in UNSAFE_CODEPOINT_RANGES:
        yield from range(start, end + 1)


def test_python_refuses_every_character_the_database_refuses():
    """The CHECK constraints' frozen ranges stay inside what the validators refuse: the database never
    turns down, with a form-wide error, a value the field-level check let through."""
    for cp in _code_points():
        char = chr(cp)
        with pytest.raises(ValidationError):
            validate_safe_identifier(f"A{char}B")
        if char not in "\t\n\r":
            with pytest.raises(ValidationError):
                validate_safe_free_text(f"A{char}B")
        assert unicodedata.category(char) in {"Cc", "Cf", "Co", "Zl", "Zp"}


def test_the_postgresql_character_classes_match_exactly_the_frozen_ranges():
    samples = [0x00A0, 0x0041, 0x00E9, 0x200A, 0x2010, 0x2065, 0xFFFC, 0xE0000, 0x1F600]  # visible or unassigned
    samples += [cp for start, end in UNSAFE_CODEPOINT_RANGES for cp in {start, end, (start + end) // 2}]
    with connection.cursor() as cursor:
        for cp in samples:
            cursor.execute(
                "SELECT %s ~ %s, %s ~ %s", [chr(cp), UNSAFE_IDENTIFIER_CLASS, chr(cp), UNSAFE_FREE_TEXT_CLASS]
            )
            unsafe = any(start <= cp <= end for start, end in UNSAFE_CODEPOINT_RANGES)
            assert cursor.fetchone() == (unsafe, unsafe and chr(cp) not in "\t\n\r"), f"U+{cp:04X}"
