"""Fixed personas (DESIGN.md 4.8) and their clinics.

alice: clinician at clinic A (owns the data); bob: her colleague at clinic A;
charlie: clinician at clinic B; dora: coordinator at clinic A; root: registry administrator.
"""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from django.test import Client

from registry import services
from registry.choices import Role
from tests.factories import ClinicFactory, UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(code="A-MAD", name="Clinic A Madrid", country="ES", city="Madrid")


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(code="B-BER", name="Clinic B Berlin", country="DE", city="Berlin")


def _member(username, role, clinic):
    user = UserFactory(username=username)
    services.membership_create(user=user, role=role, clinic=clinic)
    return user


@pytest.fixture
def alice(clinic_a):
    return _member("alice", Role.CLINICIAN, clinic_a)


@pytest.fixture
def bob(clinic_a):
    return _member("bob", Role.CLINICIAN, clinic_a)


@pytest.fixture
def dora(clinic_a):
    return _member("dora", Role.COORDINATOR, clinic_a)


@pytest.fixture
def charlie(clinic_b):
    return _member("charlie", Role.CLINICIAN, clinic_b)


@pytest.fixture
def root(db):
    return _member("root", Role.REGISTRY_ADMIN, None)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    # PBKDF2 at full strength costs ~0.3 s a login; the tests log in hundreds of times.
    # Session-wide (not per test) so class-level setUpTestData users hash the same way.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class RegistryClient(Client):
    """The test client, logging in through the real backends (django-axes needs a request)."""

    def login(self, **credentials):
        credentials.setdefault("request", HttpRequest())
        return super().login(**credentials)


@pytest.fixture
def client():
    return RegistryClient()
