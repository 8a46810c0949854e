"""Fixed personas (DESIGN.md 4.8) and their clinics.

alice: clinician at clinic A (owns the data); bob: her colleague at clinic A;
charlie: clinician at clinic B; dora: coordinator at clinic A; root: registry administrator.

Every persona has a confirmed authenticator (TOTP device), as a real staff user must. A test client's
login() or force_login() stands for the whole two-factor login: the session it makes is verified by
the user's device (see _test_client_logins_give_the_second_factor). Tests of the second factor itself
use login_password_only() or the real login form with totp_code().
"""

from __future__ import annotations

import time

import pytest
from django.http import HttpRequest
from django.test import Client
from django.test.client import ClientMixin

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
    confirmed_device(user)
    return user


def confirmed_device(user):
    """Return the user's confirmed TOTP device, creating one (as enrolment would) if there is none."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)


def totp_code(device) -> str:
    """Return a code the device accepts now, as the user's authenticator app would show it.

    A device refuses a code of a time step it already accepted (replay protection) and accepts one step
    ahead, so a second login in the same 30 s uses the next step's code; a third waits for the clock.
    """
    from django_otp.oath import TOTP

    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    while True:
        totp.time = time.time()
        ahead = device.last_t + 1 - totp.t()  # steps until a step the device has not used yet
        if ahead <= 0:
            break
        if ahead <= device.tolerance:
            totp.time += ahead * device.step
            break
        time.sleep(1)
    return f"{totp.token():0{device.digits}d}"


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


@pytest.fixture
def sam(db):
    """The safety reviewer: registry-wide, reads every clinic, writes only medical reviews (issue 10)."""
    return _member("sam", Role.SAFETY_REVIEWER, None)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    # PBKDF2 at full strength costs ~0.3 s a login; the tests log in hundreds of times.
    # Session-wide (not per test) so class-level setUpTestData users hash the same way.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


_PASSWORD_ONLY_LOGIN = ClientMixin._login


@pytest.fixture(autouse=True, scope="session")
def _test_client_logins_give_the_second_factor():
    """Make Client.login()/force_login() sessions verified by the user's TOTP device.

    The admin and the API refuse a session without the second factor; the suite logs personas in
    through the test client hundreds of times, so the test client does what a TOTP login does
    (django_otp.login stores the device in the session). Production code is not touched.
    """
    from django_otp import DEVICE_ID_SESSION_KEY

    def _login(self, user, backend=None):
        _PASSWORD_ONLY_LOGIN(self, user, backend)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = confirmed_device(user).persistent_id
        session.save()

    ClientMixin._login = _login
    yield
    ClientMixin._login = _PASSWORD_ONLY_LOGIN


def login_password_only(client: Client, user) -> None:
    """Log the client in with the password step only (no second factor), as a half-finished login."""
    _PASSWORD_ONLY_LOGIN(client, user, "django.contrib.auth.backends.ModelBackend")


class RegistryClient(Client):
    """The test client, logging in through the real backends (django-axes needs a request)."""

    def login(self, **credentials):
        credentials.setdefault("request", HttpRequest())
        return super().login(**credentials)


@pytest.fixture
def client():
    return RegistryClient()
