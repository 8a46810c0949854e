"""API authentication: token login (password + TOTP for staff), the caller's tokens, logout.

Tokens are django-rest-knox tokens: stored only as a SHA-512 digest, expiring REST_KNOX["TOKEN_TTL"]
after the login that issued them, one new token per login, revoked by logout, by a password change
and by deactivation (core.auth). Login failures (password or code) count towards django-axes'
lockout, and the endpoint is throttled per client address (REMOTE_ADDR unless TRUSTED_PROXY_COUNT).
"""

from __future__ import annotations

from collections.abc import Mapping

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.utils import timezone
from django_otp import devices_for_user
from django_otp import verify_token as otp_verify_token
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from knox.auth import TokenAuthentication
from knox.models import get_token_model
from rest_framework import exceptions, generics, serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from core.api.errors import error_response_serializer
from core.auth import otp_required


class VerifiedSessionScheme(SessionScheme):
    """Document VerifiedSessionAuthentication as the session cookie it is (registered on import)."""

    target_class = "core.api.authentication.VerifiedSessionAuthentication"


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many failed logins: this account is locked for a while. Ask a registry administrator."
    default_code = "locked_out"


class LoginRateThrottle(AnonRateThrottle):
    scope = "login"


class TokenLoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    otp_token = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=8,
        help_text="The current code of the user's authenticator app; required for staff (every clinic role).",
    )


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown once, stored hashed.")
    expiry = serializers.DateTimeField(help_text="When the token stops working; log in again for a new one.")


def _otp_error(detail: str, code: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({"otp_token": [ErrorDetail(detail, code=code)]})


@extend_validation_errors(["authorization"], field_name="non_field_errors", methods=["post"])
@extend_validation_errors(
    ["otp_required", "otp_invalid", "otp_throttled", "otp_not_enrolled"], field_name="otp_token", methods=["post"]
)
class ObtainTokenView(APIView):
    """Exchange a username, password and (for staff) an authenticator code for a new API token.

    Every login issues a new token (``Authorization: Token <token>``) that expires after the configured
    lifetime. Repeated failures, of the password or of the code, lock the username out (django-axes),
    as on the admin login.
    """

    authentication_classes = ()  # anonymous by design: the throttle then always applies
    permission_classes = (AllowAny,)
    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=TokenLoginSerializer,
        responses={
            200: TokenResponseSerializer,
            429: OpenApiResponse(
                error_response_serializer("LoginRefused", ["throttled", "locked_out"]),
                description="Too many attempts from this address, or this username is locked out.",
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        # The body may be any JSON (a list, a number): the serializer answers those with a 400, so only a
        # plausible username is looked up here. (A NUL never gets here: core.parsers refuses it with a 400.)
        username = request.data.get("username", "") if isinstance(request.data, Mapping) else ""
        credentials = {"username": username if isinstance(username, str) else ""}
        if AxesProxyHandler.is_locked(request._request, credentials):
            raise LockedOut()
        serializer = TokenLoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = authenticate(request=request, username=data["username"], password=data["password"])
        if user is None:
            raise exceptions.ValidationError(
                {"non_field_errors": [ErrorDetail("Unable to log in with provided credentials.", code="authorization")]}
            )
        if otp_required(user):
            self._verify_second_factor(request, user, data.get("otp_token", ""))
        instance, token = get_token_model().objects.create(user=user)
        # Resets the user's failure count (AXES_RESET_ON_SUCCESS) and records last_login.
        user_logged_in.send(sender=type(user), request=request, user=user)
        expiry = serializers.DateTimeField().to_representation(instance.expiry)
        return Response({"token": token, "expiry": expiry})

    @staticmethod
    def _verify_second_factor(request, user, code: str) -> None:
        devices = list(devices_for_user(user, confirmed=True))
        error = None
        if not devices:
            error = _otp_error(
                "This account has no authenticator app yet: log in to the admin once to set one up.",
                "otp_not_enrolled",
            )
        elif not code.strip():
            error = _otp_error(
                "Staff accounts must send otp_token, the code of their authenticator app.", "otp_required"
            )
        elif not any(device.verify_is_allowed()[0] for device in devices):
            # django-otp doubles a device's wait after each wrong code (1 s, 2 s, 4 s...).
            error = _otp_error("Too many wrong codes: wait a few seconds and send the next code.", "otp_throttled")
        elif not any(otp_verify_token(user, device.persistent_id, code.strip()) for device in devices):
            error = _otp_error("The authenticator code is wrong or was already used.", "otp_invalid")
        if error is not None:
            # A wrong or missing code is a failed login for the lockout, like a wrong password.
            user_login_failed.send(
                sender=ObtainTokenView, credentials={"username": user.get_username()}, request=request
            )
            raise error


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.CharField(
        source="token_key",
        read_only=True,
        help_text="The token's first characters: names it for revocation, never authenticates.",
    )
    created = serializers.DateTimeField(read_only=True)
    expiry = serializers.DateTimeField(read_only=True)
    current = serializers.SerializerMethodField(help_text="True for the token this request was sent with.")

    def get_current(self, instance) -> bool:
        auth = self.context["request"].auth
        return getattr(auth, "digest", None) == instance.digest


class ApiTokenListView(generics.ListAPIView):
    """List the caller's unexpired API tokens (never the tokens themselves)."""

    serializer_class = ApiTokenSerializer
    pagination_class = None  # a handful per user: each dies after the token lifetime
    filter_backends = ()

    def get_queryset(self):
        return (
            get_token_model()
            .objects.filter(user=self.request.user, expiry__gt=timezone.now())
            .order_by("-created", "token_key")
        )


class ApiTokenDetailView(APIView):
    """Revoke one of the caller's API tokens by its id."""

    @extend_schema(responses={204: None}, operation_id="auth_tokens_revoke")
    def delete(self, request, token_id: str):
        deleted, _ = get_token_model().objects.filter(user=request.user, token_key=token_id).delete()
        if not deleted:
            raise exceptions.NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutView(APIView):
    """Revoke the API token this request was sent with."""

    authentication_classes = (TokenAuthentication,)

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revoke every API token of the caller (all devices and integrations log in again)."""

    @extend_schema(
        request=None,
        responses={200: inline_serializer("TokensRevoked", {"revoked": serializers.IntegerField()})},
    )
    def post(self, request):
        deleted, _ = get_token_model().objects.filter(user=request.user).delete()
        return Response({"revoked": deleted})
