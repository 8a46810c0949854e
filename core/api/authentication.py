"""Session authentication for the API that wants the second factor (kept apart from the views: DRF
imports DEFAULT_AUTHENTICATION_CLASSES while rest_framework.views loads, so this module imports no view)."""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication

from core.auth import otp_required


class VerifiedSessionAuthentication(SessionAuthentication):
    """Session authentication that ignores a session still missing its second factor.

    A password-only session (a user half-way through the admin login or enrolment) must not open the
    API: only a session verified by a TOTP code counts, unless the user needs none (core.auth).
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        is_verified = getattr(user, "is_verified", None)
        if otp_required(user) and not (callable(is_verified) and is_verified()):
            return None
        return result
