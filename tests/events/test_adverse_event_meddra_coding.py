"""Coding an adverse event with MedDRA (events.services): the LLT gives the PT and the primary SOC.

The expected values are read off the synthetic release's files by hand (tests/meddra/release/README.md):
LLT 94000001 "Synthetic pain at injection site" -> PT 93000001 "Synthetic injection site pain" -> SOC 90000001;
LLT 94000003 -> PT 93000002 "Synthetic septic arthritis", in SOC 90000002 (primary) and 90000003 (secondary);
LLT 94000002 is non-current; LLT 94000004 is current in 27.1 and non-current in 28.0.
"""

from __future__ import annotations

import contextlib

import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from core.integrity import save_or_field_error
from events import services
from events.models import AdverseEvent
from tests.factories import AdverseEventFactory
from tests.meddra.conftest import load

pytestmark = pytest.mark.django_db

INJECTION_SITE_PAIN = {
    "meddra_version": "27.1",
    "meddra_llt_name": "Synthetic pain at injection site",
    "meddra_pt_code": "93000001",
    "meddra_pt_name": "Synthetic injection site pain",
    "meddra_soc_code": "90000001",
    "meddra_soc_name": "Synthetic general disorders and administration site conditions",
}
UNCODED = dict.fromkeys(INJECTION_SITE_PAIN, "")


@contextlib.contextmanager
def refused_by(constraint: str):
    """Expect the database to refuse the write under ``constraint`` (a CHECK or a trigger of that name)."""
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        yield
    assert refused.value.__cause__.diag.constraint_name == constraint


def coding(event) -> dict:
    event = AdverseEvent.objects.get(pk=event.pk)
    return {name: getattr(event, name) for name in INJECTION_SITE_PAIN}


def test_a_lowest_level_term_brings_its_preferred_term_and_primary_soc(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    assert coding(event) == INJECTION_SITE_PAIN


def test_a_pt_in_two_socs_is_coded_to_its_primary_soc(meddra_27_1, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, category="infection", meddra_code="94000003")
    assert coding(event) == {
        "meddra_version": "27.1",
        "meddra_llt_name": "Synthetic bacterial joint infection",
        "meddra_pt_code": "93000002",
        "meddra_pt_name": "Synthetic septic arthritis",
        "meddra_soc_code": "90000002",
        "meddra_soc_name": "Synthetic infections and infestations",
    }


@pytest.mark.parametrize(("code", "why"), [("99999999", "unknown"), ("94000002", "non-current")])
def test_an_unknown_or_non_current_code_is_a_field_error_and_stores_nothing(meddra_27_1, alice, procedure_a, code, why):
    with pytest.raises(ValidationError) as refused:
        services.adverse_event_create(
            actor=alice,
            procedure=procedure_a,
            category="injection_site_reaction",
            term="Sore knee",
            meddra_code=code,
            onset_on=procedure_a.performed_on,
            grade=1,
        )
    assert refused.value.message_dict == {
        "meddra_code": ["Not a current lowest level term of the MedDRA dictionary (MedDRA 27.1)."]
    }
    assert not AdverseEvent.objects.exists()


def test_a_code_error_is_reported_with_the_other_field_errors(meddra_27_1, alice, procedure_a):
    with pytest.raises(ValidationError) as refused:
        services.adverse_event_create(
            actor=alice,
            procedure=procedure_a,
            category="injection_site_reaction",
            term="Sore knee",
            meddra_code="99999999",
            onset_on=procedure_a.performed_on,
            grade=1,
            serious=True,  # without a criterion
        )
    assert set(refused.value.message_dict) == {"meddra_code", "serious"}


def test_a_malformed_code_is_still_a_shape_error_first(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory.build(procedure=procedure_a, meddra_code="1234")
    with pytest.raises(ValidationError) as refused:
        services.adverse_event_save(actor=alice, event=event)
    assert refused.value.message_dict["meddra_code"] == ["A MedDRA code is exactly 8 digits (for example 10022086)."]


def test_the_newest_version_codes_and_an_older_one_may_be_named(meddra_28_0, alice, procedure_a):
    # 94000004 "Synthetic knee swelling" is no longer current in 28.0, the newest release loaded.
    with pytest.raises(ValidationError, match=r"MedDRA 28\.0"):
        AdverseEventFactory(procedure=procedure_a, meddra_code="94000004")
    event = services.adverse_event_create(
        actor=alice,
        procedure=procedure_a,
        meddra_version="27.1",
        category="injection_site_reaction",
        term="Swollen knee",
        meddra_code="94000004",
        onset_on=procedure_a.performed_on,
        grade=1,
    )
    assert coding(event)["meddra_version"] == "27.1"
    assert coding(event)["meddra_pt_code"] == "93000003"
    current = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    assert coding(current) == INJECTION_SITE_PAIN | {"meddra_version": "28.0"}


def test_naming_a_version_that_is_not_loaded_is_a_field_error(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory.build(procedure=procedure_a, meddra_code="94000001")
    with pytest.raises(ValidationError) as refused:
        services.adverse_event_save(actor=alice, event=event, meddra_version="26.0")
    assert refused.value.message_dict == {"meddra_code": ["This MedDRA version is not loaded (MedDRA 26.0)."]}


def test_a_changed_code_is_coded_again_and_audited(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    event.meddra_code = "94000004"
    services.adverse_event_save(actor=alice, event=event)

    assert coding(event)["meddra_pt_code"] == "93000003"
    assert coding(event)["meddra_soc_code"] == "90000003"
    last = pghistory.models.Events.objects.tracks(event).order_by("pgh_created_at", "pgh_id").last()
    assert last.pgh_diff["meddra_code"] == ["94000001", "94000004"]
    assert last.pgh_diff["meddra_pt_code"] == ["93000001", "93000003"]
    assert last.pgh_context["user"] == alice.pk
    assert AdverseEvent.objects.get(pk=event.pk).version == 2


def test_an_unchanged_code_keeps_its_version_when_the_term_later_goes_out_of_use(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000004")
    load("28.0")
    event = AdverseEvent.objects.get(pk=event.pk)
    event.grade = 2
    services.adverse_event_save(actor=alice, event=event)
    assert coding(event)["meddra_version"] == "27.1"
    assert AdverseEvent.objects.get(pk=event.pk).grade == 2
    # ...and coding it again against 28.0 is refused.
    with pytest.raises(ValidationError, match=r"MedDRA 28\.0"):
        services.adverse_event_save(actor=alice, event=event, meddra_version="28.0")


def test_clearing_the_code_clears_what_it_brought(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    event.meddra_code = ""
    services.adverse_event_save(actor=alice, event=event)
    assert coding(event) == UNCODED


def test_a_caller_cannot_set_what_coding_derives(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    event.meddra_pt_code, event.meddra_soc_name = "93000003", "Made up"
    services.adverse_event_save(actor=alice, event=event)
    assert coding(event) == INJECTION_SITE_PAIN
    forged = AdverseEventFactory(procedure=procedure_a, meddra_code="", meddra_pt_code="93000001")
    assert coding(forged) == UNCODED


def test_without_a_dictionary_a_code_only_needs_its_shape(alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="10040047")
    assert AdverseEvent.objects.get(pk=event.pk).meddra_code == "10040047"
    assert coding(event) == UNCODED


def test_the_database_refuses_a_code_that_is_not_a_current_llt(meddra_27_1, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    for code in ("94000002", "99999999"):  # non-current, unknown; the derived fields left as they were
        with refused_by("ae_meddra_code_current_llt"):
            AdverseEvent.objects.filter(pk=event.pk).update(meddra_code=code)
    # Coded without a version while a dictionary is loaded, and a PT that is not the LLT's.
    uncoded = AdverseEventFactory(procedure=procedure_a)
    with refused_by("ae_meddra_code_current_llt"):
        AdverseEvent.objects.filter(pk=uncoded.pk).update(meddra_code="94000001")
    with refused_by("ae_meddra_code_current_llt"):
        AdverseEvent.objects.filter(pk=event.pk).update(meddra_code="94000003")  # keeps PT 93000001
    with refused_by("ae_meddra_version_loaded"):
        AdverseEvent.objects.filter(pk=event.pk).update(meddra_version="26.0")
    # The backstop maps back to the field and message of the catalogue.
    stale = AdverseEvent.objects.get(pk=event.pk)
    stale.meddra_code = "94000002"
    with pytest.raises(ValidationError) as refused:
        save_or_field_error(stale)
    assert refused.value.message_dict == {"meddra_code": ["Not a current lowest level term of the MedDRA dictionary."]}


def test_the_database_keeps_coding_whole(meddra_27_1, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="94000001")
    with refused_by("ae_meddra_derivation_whole"):
        AdverseEvent.objects.filter(pk=event.pk).update(meddra_soc_name="")
    with refused_by("ae_meddra_derivation_whole"):
        AdverseEvent.objects.filter(pk=event.pk).update(meddra_code="")


def test_without_a_dictionary_the_database_takes_a_well_shaped_code(procedure_a):
    event = AdverseEventFactory(procedure=procedure_a)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE events_adverseevent SET meddra_code = '10022086' WHERE id = %s", [event.pk])
    assert AdverseEvent.objects.get(pk=event.pk).meddra_code == "10022086"


def test_a_retracted_and_restored_event_keeps_its_coding(meddra_28_0, alice, root, procedure_a):
    event = services.adverse_event_create(
        actor=alice,
        procedure=procedure_a,
        meddra_version="27.1",
        category="injection_site_reaction",
        term="Swollen knee",
        meddra_code="94000004",
        onset_on=procedure_a.performed_on,
        grade=1,
    )
    services.adverse_event_retract(actor=alice, event=event, reason="Entered twice")
    services.adverse_event_restore(actor=root, event=AdverseEvent.objects.get(pk=event.pk))
    assert coding(event)["meddra_version"] == "27.1"
