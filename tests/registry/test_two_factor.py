"""Two-factor admin login (django-otp TOTP): the code is required, checked once, enrolled at first login."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry import services
from registry.choices import Role
from tests.conftest import PASSWORD, confirmed_device, login_password_only, totp_code
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/events/adverseevent/"
ENROL = "/admin/two-factor/enrol/"


def admin_login(client, user, code):
    body = {"username": user.username, "password": PASSWORD}
    if code is not None:
        body["otp_token"] = code
    return client.post(LOGIN, body)


def wrong_code(device) -> str:
    right = totp_code(device)
    return "000000" if right != "000000" else "111111"


def test_a_session_without_the_second_factor_is_sent_back_to_the_login(client, alice):
    login_password_only(client, alice)
    for url in ("/admin/", "/admin/events/adverseevent/", "/admin/registry/patient/add/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url


def test_the_login_page_asks_for_the_authenticator_code(client, alice):
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert b'name="otp_token"' in page.content and b'autocomplete="one-time-code"' in page.content


def test_a_login_without_a_code_is_refused_and_counted(client, alice):
    response = admin_login(client, alice, None)
    assert response.status_code == 200
    assert "otp_token" in response.context["form"].errors
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 1


def test_a_wrong_code_is_refused(client, alice):
    response = admin_login(client, alice, wrong_code(confirmed_device(alice)))
    assert response.status_code == 200
    assert response.context["form"].errors["otp_token"]
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_the_right_code_opens_the_admin(client, alice):
    device = confirmed_device(alice)
    response = admin_login(client, alice, totp_code(device))
    assert response.status_code == 302
    assert response["Location"] == "/admin/events/adverseevent/"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/admin/events/adverseevent/").status_code == 200


def test_a_code_is_accepted_only_once(client, alice):
    device = confirmed_device(alice)
    code = totp_code(device)
    assert admin_login(client, alice, code).status_code == 302
    again = type(client)()
    response = admin_login(again, alice, code)
    assert response.status_code == 200
    assert "_auth_user_id" not in again.session


def test_a_staff_user_enrols_an_authenticator_at_first_login(client, clinic_a, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # a wrong code delays the next try; that is the test below
    newcomer = UserFactory(username="newcomer")
    services.membership_create(user=newcomer, role=Role.CLINICIAN, clinic=clinic_a)
    response = admin_login(client, newcomer, None)
    assert response.status_code == 302 and response["Location"] == ENROL
    # Password only so far: the admin stays closed.
    assert client.get("/admin/").status_code == 302
    page = client.get(ENROL)
    assert page.status_code == 200
    assert b'src="data:image/svg+xml;base64,' in page.content
    device = TOTPDevice.objects.get(user=newcomer)
    assert not device.confirmed
    assert page.context["secret"].encode() in page.content
    refused = client.post(ENROL, {"otp_token": wrong_code(device)})
    assert refused.status_code == 200 and refused.context["form"].errors["otp_token"]
    assert client.get("/admin/").status_code == 302
    confirmed = client.post(ENROL, {"otp_token": totp_code(device)})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    # Once enrolled, nobody adds or replaces a device through this page.
    assert client.get(ENROL)["Location"] == "/admin/"
    assert TOTPDevice.objects.filter(user=newcomer).count() == 1


def test_a_wrong_code_at_enrolment_delays_the_next_try(client, clinic_a):
    newcomer = UserFactory(username="newcomer")
    services.membership_create(user=newcomer, role=Role.CLINICIAN, clinic=clinic_a)
    admin_login(client, newcomer, None)
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=newcomer)
    client.post(ENROL, {"otp_token": wrong_code(device)})
    response = client.post(ENROL, {"otp_token": totp_code(device)})
    assert response.status_code == 200
    assert "Too many wrong codes" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed


def test_the_enrolment_page_is_closed_to_anonymous_and_to_users_with_a_device(client, alice):
    assert client.get(ENROL)["Location"].startswith("/admin/login/")
    login_password_only(client, alice)  # has a device: must give its code at login, not enrol another
    response = client.get(ENROL)
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=alice).count() == 1
    assert client.get("/admin/").status_code == 302


def test_without_self_enrolment_a_user_without_a_device_cannot_log_in(client, clinic_a, settings):
    settings.OTP_SELF_ENROLMENT = False
    newcomer = UserFactory(username="newcomer")
    services.membership_create(user=newcomer, role=Role.CLINICIAN, clinic=clinic_a)
    response = admin_login(client, newcomer, None)
    assert response.status_code == 200
    assert "ask a registry administrator" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_demo_users_skip_the_code_in_debug_only(client, clinic_a, settings):
    from intake.demo import DEMO_PASSWORD

    demo = UserFactory(username="coordinator_madrid", password=DEMO_PASSWORD)
    services.membership_create(user=demo, role=Role.COORDINATOR, clinic=clinic_a)
    body = {"username": demo.username, "password": DEMO_PASSWORD, "next": "/admin/"}
    settings.OTP_EXEMPT_DEMO_USERS = True
    settings.DEBUG = True
    assert client.post("/admin/login/", body)["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    settings.DEBUG = False
    # The same session is no longer enough, and a new login must enrol an authenticator first.
    assert client.get("/admin/").status_code == 302
    fresh = type(client)()
    assert fresh.post("/admin/login/", body)["Location"] == ENROL
    assert fresh.get("/admin/").status_code == 302


def test_an_administrator_creates_a_device_for_a_user_and_sees_its_qr_code(client, alice):
    superuser = UserFactory(username="superuser", is_staff=True, is_superuser=True)
    TOTPDevice.objects.filter(user=alice).delete()
    client.force_login(superuser)
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 200
    response = client.post(
        "/admin/otp_totp/totpdevice/add/",
        {
            "user": alice.pk,
            "name": "Alice's phone",
            "confirmed": "on",
            "key": "3132333435363738393031323334353637383930",
            "step": 30,
            "t0": 0,
            "digits": 6,
            "tolerance": 1,
            "drift": 0,
            "throttling_failure_count": 0,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    device = TOTPDevice.objects.get(user=alice)
    qr = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/")
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml"
    # Alice now logs in with the new device.
    other = type(client)()
    assert admin_login(other, alice, totp_code(device)).status_code == 302


def test_clinicians_cannot_see_anyones_authenticator(client, alice, charlie):
    assert not Permission.objects.filter(group__user=alice, content_type__app_label="otp_totp").exists()
    client.force_login(alice)
    device = confirmed_device(charlie)
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 403
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code == 403
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 403
