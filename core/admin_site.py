"""The admin site with a second factor (django-otp TOTP), and first-login enrolment of an authenticator app.

Every staff user must give a 6-digit code from their authenticator app at login (OTPAdminSite refuses an
unverified session on every admin page). A user who has no confirmed device yet passes the password step,
is sent to the enrolment page (QR code, then one code to confirm) and only then reaches the admin. Demo
users may skip the code in DEBUG only (core.auth.is_demo_exempt).
"""

from __future__ import annotations

import base64
import io

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from core.auth import has_confirmed_device, otp_required

ENROLMENT_DEVICE_NAME = "Authenticator app"


class RegistryAdminAuthenticationForm(OTPAdminAuthenticationForm):
    """The admin login: username, password and the current code of the user's authenticator app."""

    otp_token = forms.CharField(
        required=False,
        label="Authenticator code",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6-digit code your authenticator app shows now. Leave empty at your first login.",
    )

    def clean(self):
        # The password step (and the staff check) of the plain admin form; the second factor follows.
        cleaned = AdminAuthenticationForm.clean(self)
        user = self.get_user()
        self.needs_enrolment = False
        if user is None or not otp_required(user):
            return cleaned
        devices = list(devices_for_user(user, confirmed=True))
        if not devices:
            if settings.OTP_SELF_ENROLMENT:
                self.needs_enrolment = True  # the site sends this session to the enrolment page
                return cleaned
            raise ValidationError(
                "No authenticator app is set up for this account; ask a registry administrator.", code="no_device"
            )
        if not cleaned.get("otp_device") and len(devices) == 1:
            cleaned["otp_device"] = devices[0].persistent_id
        try:
            self.clean_otp(user)
        except ValidationError as exc:
            # A wrong or missing code is a failed login: django-axes counts it towards the lockout.
            user_login_failed.send(
                sender=type(self), credentials={"username": user.get_username()}, request=self.request
            )
            self.add_error("otp_token", exc)
        return cleaned


class EnrolmentForm(forms.Form):
    otp_token = forms.CharField(
        label="Code from the app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def __init__(self, *args, device, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_otp_token(self):
        token = self.cleaned_data["otp_token"].strip()
        allowed, _extra = self.device.verify_is_allowed()
        if not allowed:
            raise ValidationError("Too many wrong codes: wait a little and try again.", code="throttled")
        if not self.device.verify_token(token):
            raise ValidationError("That code is not the one the app shows now; try the next one.", code="invalid")
        return token


def _qr_data_uri(text: str) -> str:
    """Return an SVG QR code of ``text`` as a data: URI (allowed by the CSP's img-src)."""
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10).save(out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")


class RegistryAdminSite(OTPAdminSite):
    """``admin.site``: Django's admin, open only to staff verified by a TOTP code in this session."""

    login_form = RegistryAdminAuthenticationForm
    login_template = "admin/two_factor/login.html"

    def __init__(self, name: str = "admin"):
        # OTPAdminSite defaults to the name "otpadmin"; the URL namespace stays "admin".
        super().__init__(name)

    def has_permission(self, request) -> bool:
        """Return True for an active staff user who gave a code this session (or is a DEBUG demo user)."""
        if not AdminSite.has_permission(self, request):
            return False
        return request.user.is_verified() or not otp_required(request.user)

    def get_urls(self):
        urls = [path("two-factor/enrol/", self.enrol_view, name="two_factor_enrol")]
        return urls + super().get_urls()

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        # The password was right but the user has no authenticator yet: enrol one before anything else.
        if (
            request.method == "POST"
            and isinstance(response, HttpResponseRedirect)
            and request.user.is_authenticated
            and settings.OTP_SELF_ENROLMENT
            and otp_required(request.user)
            and not has_confirmed_device(request.user)
        ):
            return HttpResponseRedirect(reverse(f"{self.name}:two_factor_enrol"))
        return response

    @method_decorator(never_cache)
    def enrol_view(self, request):
        """Show a new TOTP secret as a QR code and confirm it with one code from the app.

        Only for a logged-in (password) user without a confirmed device: nobody can replace or add a
        device here once one is confirmed (an administrator deletes a lost one in the TOTP devices admin).
        """
        from django_otp.plugins.otp_totp.models import TOTPDevice

        user = request.user
        index = reverse(f"{self.name}:index")
        if not (user.is_authenticated and user.is_active and user.is_staff and settings.OTP_SELF_ENROLMENT):
            return HttpResponseRedirect(reverse(f"{self.name}:login") + f"?next={index}")
        if has_confirmed_device(user):
            return HttpResponseRedirect(index)
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=ENROLMENT_DEVICE_NAME, confirmed=False)
        form = EnrolmentForm(request.POST or None, device=device)
        if request.method == "POST" and form.is_valid():
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return HttpResponseRedirect(index)
        context = {
            **self.each_context(request),
            "title": "Set up your authenticator app",
            "form": form,
            "qr_code": _qr_data_uri(device.config_url),
            "secret": base64.b32encode(device.bin_key).decode("ascii"),
        }
        return TemplateResponse(request, "admin/two_factor/enrol.html", context)
