"""Procedures with patient links at clinic A (Spain) and clinic B (Germany), dated relative to today
(the codebase never fakes core.dates.today), and a clean rate-limit cache for every test."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache

from core.dates import today
from patients import services
from registry.models import Clinic
from tests.factories import PatientFactory, ProcedureFactory

PHONE_A = "+34 910 000 111"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def procedure_of(clinic, *, days_ago: int = 3, site: str = "knee"):
    """Return a procedure of a new patient of ``clinic`` performed ``days_ago`` days ago."""
    patient = PatientFactory(clinic=clinic, enrolled_on=today() - dt.timedelta(days=days_ago + 30), birth_year=1961)
    return ProcedureFactory(patient=patient, performed_on=today() - dt.timedelta(days=days_ago), site=site)


@pytest.fixture
def clinic_a_phone(clinic_a):
    Clinic.objects.filter(pk=clinic_a.pk).update(phone=PHONE_A)
    clinic_a.refresh_from_db()
    return clinic_a


@pytest.fixture
def procedure_x(clinic_a_phone):
    return procedure_of(clinic_a_phone)


@pytest.fixture
def procedure_y(clinic_b):
    return procedure_of(clinic_b, days_ago=1, site="spine")


@pytest.fixture
def link_x(alice, procedure_x):
    """Return (link, token) of procedure X (clinic A), issued by alice."""
    return services.patient_link_issue(actor=alice, procedure=procedure_x)


@pytest.fixture
def link_y(charlie, procedure_y):
    return services.patient_link_issue(actor=charlie, procedure=procedure_y)


def diary_post(**overrides) -> dict:
    """Return a valid diary form body with nothing alarming, changed by ``overrides``."""
    data = {"pain": "2", "swelling": "mild", "redness_cm": "", "temperature_c": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
