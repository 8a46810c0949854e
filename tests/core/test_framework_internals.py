"""Versioned saves, constraint validation and the audit context use Django's and pghistory's public APIs only."""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import pghistory
import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, transaction
from django.db.models.signals import post_save, pre_save

import core.audit
from core.audit import audit_context
from core.models import ConcurrentUpdate, VersionedModel
from registry.choices import Role
from registry.models import Clinic, Membership, Patient
from tests.factories import ClinicFactory, PatientFactory, UserFactory

THREADS = 8
ITERATIONS = 200


def last_context(obj) -> dict | None:
    events = pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at", "pgh_id")
    return list(events)[-1].pgh_context


# --- CleanConstraintsMixin.validate_constraints -------------------------------------------


def test_the_mixin_reads_its_models_constraints_and_never_assigns_them():
    # The shared _meta is process-wide: assigning to it from a request would race with every other thread.
    source = inspect.getsource(core.models.CleanConstraintsMixin)
    assert "_meta.constraints =" not in source
    assert "get_constraints()" in source


@pytest.mark.django_db
def test_a_duplicate_membership_is_refused_once_as_a_form_wide_error(alice, clinic_a):
    duplicate = Membership(user=alice, clinic=clinic_a, role=Role.CLINICIAN)
    with pytest.raises(ValidationError) as caught:
        duplicate.full_clean()
    assert list(caught.value.message_dict) == ["__all__"]
    assert caught.value.message_dict["__all__"] == ["Membership with this User and Clinic already exists."]


@pytest.mark.django_db
def test_a_check_constraint_clean_reports_is_not_reported_again_form_wide():
    clinic = Clinic(code="X-1", name="X", country="es")
    with pytest.raises(ValidationError) as caught:
        clinic.full_clean()
    # clean() names the field; the CHECK constraint clinic_country_iso2 adds no second, form-wide copy.
    assert caught.value.message_dict == {
        "country": ["Country must be an ISO 3166-1 alpha-2 code in capitals, e.g. ES."]
    }


@pytest.mark.django_db(transaction=True)
def test_validation_from_many_threads_at_once_is_correct_and_leaves_the_shared_meta_alone():
    # Rows the threads' own connections can see (committed, hence transaction=True).
    clinic = ClinicFactory(code="T-CLN", country="ES")
    other_clinic = ClinicFactory(code="T-OTH", country="DE")
    member = UserFactory(username="threaded")
    Membership.objects.create(user=member, clinic=clinic, role=Role.CLINICIAN)
    models = (Clinic, Membership, Patient)
    original = {model: model._meta.constraints for model in models}
    names = {model: [c.name for c in model._meta.constraints] for model in models}
    modified_seen = []
    wrong = []
    stop = threading.Event()

    def meta_untouched() -> bool:
        return all(model._meta.constraints is original[model] for model in models)

    def watch():
        # Samples the shared _meta as fast as it can while the workers validate.
        while not stop.is_set():
            if not meta_untouched():
                modified_seen.append("watcher")

    cases = [
        # (instance factory, expected invalid fields or None when valid)
        (lambda: Membership(user=member, clinic=other_clinic, role=Role.CLINICIAN), None),
        (lambda: Membership(user=member, clinic=clinic, role=Role.CLINICIAN), {"__all__"}),
        (lambda: Clinic(code="T-NEW", name="New", country="FR"), None),
        (lambda: Clinic(code="T-BAD", name="Bad", country="fr"), {"country"}),
        (lambda: Patient(clinic=clinic, sex="F", birth_year=1960, enrolled_on=dt.date(2022, 1, 3)), None),
        (lambda: Patient(clinic=clinic, sex="F", birth_year=1850, enrolled_on=dt.date(2022, 1, 3)), {"birth_year"}),
    ]

    def work(worker: int) -> int:
        checked = 0
        try:
            for i in range(ITERATIONS):
                make, expected = cases[(worker + i) % len(cases)]
                instance = make()
                try:
                    instance.full_clean()
                    found = None
                except ValidationError as exc:
                    found = set(exc.message_dict)
                if found != expected:
                    wrong.append((type(instance).__name__, expected, found))
                if not meta_untouched():
                    modified_seen.append(worker)
                checked += 1
        finally:
            connections.close_all()  # this thread's own connection
        return checked

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            checked = sum(pool.map(work, range(THREADS)))
    finally:
        stop.set()
        watcher.join()

    assert checked == THREADS * ITERATIONS
    assert wrong == []
    assert modified_seen == []
    assert {model: [c.name for c in model._meta.constraints] for model in models} == names


# --- VersionedModel -----------------------------------------------------------------------


def test_versioned_saves_override_no_private_django_method():
    assert {"_do_update", "_save_table", "_do_insert", "_save_parents"}.isdisjoint(vars(VersionedModel))


@pytest.mark.django_db
def test_a_save_writes_the_row_and_takes_the_version_the_trigger_gave_it(clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    stamped = Patient.objects.get(pk=patient.pk).updated_at
    patient.withdrawn_on = patient.enrolled_on + dt.timedelta(days=30)
    patient.save()
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.withdrawn_on, stored.version, patient.version) == (patient.withdrawn_on, 2, 2)
    assert stored.updated_at > stamped  # auto_now still stamps an update
    patient.death_cause = "unknown"
    patient.save()  # the instance's own version stays current after its own save
    assert Patient.objects.get(pk=patient.pk).version == patient.version == 3


@pytest.mark.django_db
def test_a_save_with_update_fields_writes_only_those_fields(clinic_a):
    patient = PatientFactory(clinic=clinic_a, birth_year=1960)
    patient.birth_year = 1961
    patient.death_cause = "not saved"
    patient.save(update_fields=["birth_year"])
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.birth_year, stored.death_cause, stored.version) == (1961, "", 2)


@pytest.mark.django_db
def test_a_stale_save_is_refused_and_changes_nothing(clinic_a):
    patient = PatientFactory(clinic=clinic_a, birth_year=1960)
    stale = Patient.objects.get(pk=patient.pk)
    Patient.objects.filter(pk=patient.pk).update(birth_year=1962)
    stale.birth_year = 1970
    with pytest.raises(ConcurrentUpdate), transaction.atomic():
        stale.save()
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.birth_year, stored.version, stale.version) == (1962, 2, 1)


@pytest.mark.django_db
def test_a_save_sends_pre_and_post_save_once_and_a_refused_one_sends_no_post_save(clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    sent = []

    def record(signal_name):
        def receiver(sender, instance, **kwargs):
            sent.append((signal_name, sender, instance.pk, kwargs.get("created"), kwargs.get("update_fields")))

        return receiver

    on_pre, on_post = record("pre_save"), record("post_save")
    pre_save.connect(on_pre, sender=Patient)
    post_save.connect(on_post, sender=Patient)
    try:
        patient.save(update_fields=["death_cause"])
        stale = Patient.objects.get(pk=patient.pk)
        stale.version = 1
        with pytest.raises(ConcurrentUpdate), transaction.atomic():
            stale.save()
    finally:
        pre_save.disconnect(on_pre, sender=Patient)
        post_save.disconnect(on_post, sender=Patient)
    assert sent == [
        ("pre_save", Patient, patient.pk, None, frozenset({"death_cause"})),
        ("post_save", Patient, patient.pk, False, frozenset({"death_cause"})),
        ("pre_save", Patient, patient.pk, None, None),
    ]


@pytest.mark.django_db
def test_a_save_of_a_deleted_row_behaves_as_in_django(clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    Patient.objects.filter(pk=patient.pk).delete()
    with pytest.raises(DatabaseError, match="update_fields did not affect any rows"), transaction.atomic():
        patient.save(update_fields=["birth_year"])
    patient.save()  # Django inserts a row saved after its deletion again
    assert Patient.objects.filter(pk=patient.pk, registry_id=patient.registry_id).exists()


# --- audit_context --------------------------------------------------------------------------


def test_the_audit_context_uses_no_private_pghistory_state():
    assert "_tracker" not in inspect.getsource(core.audit)


@pytest.mark.django_db
def test_the_audit_context_names_the_actor_and_the_action(alice):
    with audit_context(alice, "clinic_create"):
        clinic = ClinicFactory(code="AUD-1")
    assert last_context(clinic) == {"user": alice.pk, "action": "clinic_create"}


@pytest.mark.django_db
def test_a_nested_audit_context_never_overwrites_the_outer_user_or_action(alice, bob):
    with pghistory.context(user=alice.pk, action="import_registry"):
        with audit_context(bob, "clinic_create"):
            clinic = ClinicFactory(code="AUD-2")
        with audit_context(None, "clinic_update"):
            clinic.city = "Toledo"
            clinic.save()
    assert last_context(clinic) == {"user": alice.pk, "action": "import_registry"}


@pytest.mark.django_db
def test_a_nested_audit_context_fills_what_the_outer_one_lacks(alice):
    with pghistory.context(action="load_demo_data"), audit_context(alice, "clinic_create"):
        clinic = ClinicFactory(code="AUD-3")
    assert last_context(clinic) == {"user": alice.pk, "action": "load_demo_data"}


@pytest.mark.django_db
def test_each_outermost_audit_context_groups_its_own_writes(alice, bob):
    with audit_context(alice, "clinic_create") as first:
        ClinicFactory(code="AUD-4")
    with audit_context(bob, "clinic_update") as second:
        clinic = ClinicFactory(code="AUD-5")
    assert first.id != second.id
    assert last_context(clinic) == {"user": bob.pk, "action": "clinic_update"}
