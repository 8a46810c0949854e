"""factory_boy factories that write through the services, as the admin and API do."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model

from events import services as event_services
from events.models import AdverseEvent
from registry import services
from registry.models import Clinic, Patient, Procedure

User = get_user_model()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct-horse-battery")


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"CL-{n:03d}")
    name = factory.Sequence(lambda n: f"Clinic {n}")
    country = "ES"
    city = "Madrid"
    gmp_certified = True


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    sex = "F"
    birth_year = 1970
    enrolled_on = dt.date(2023, 1, 10)
    # A death date needs a fatal event or a recorded cause (registry.rules.DEATH_NEEDS_CAUSE).
    death_cause = factory.LazyAttribute(lambda o: "unknown" if getattr(o, "death_date", None) else "")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.patient_save(actor=None, patient=model_class(*args, **kwargs))


class ProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Procedure

    patient = factory.SubFactory(PatientFactory)
    clinic = factory.LazyAttribute(lambda o: o.patient.clinic)
    performed_on = dt.date(2023, 1, 15)
    site = "knee"
    laterality = "left"
    cell_source = "autologous"
    cell_type = "bmac"
    processing = "minimally_manipulated"
    cell_dose_millions = "25.00"
    carrier = "saline"
    guidance = "ultrasound"
    product_lot = factory.Sequence(lambda n: f"LOT-{n:05d}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.procedure_save(actor=None, procedure=model_class(*args, **kwargs))


class AdverseEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdverseEvent

    procedure = factory.SubFactory(ProcedureFactory)
    category = "injection_site_reaction"
    term = "Knee pain at injection site"
    onset_on = factory.LazyAttribute(lambda o: o.procedure.performed_on + dt.timedelta(days=1))
    grade = 1
    outcome = "recovered"
    # A recovered outcome needs its resolution date (events.rules.RECOVERED_NEEDS_RESOLUTION).
    resolved_on = factory.LazyAttribute(
        lambda o: max(o.onset_on, min(o.onset_on + dt.timedelta(days=2), dt.date.today()))
        if o.outcome in ("recovered", "recovered_with_sequelae")
        else None
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return event_services.adverse_event_save(actor=None, event=model_class(*args, **kwargs))


def issue_api_token(user) -> str:
    """Return a fresh API bearer token for user, as the token endpoint would issue it (knox, hashed)."""
    from knox.models import get_token_model

    _instance, token = get_token_model().objects.create(user=user)
    return token
