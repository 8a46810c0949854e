"""Token login for integrations, behind django-axes' brute-force lockout."""

from __future__ import annotations

from collections.abc import Mapping

from axes.handlers.proxy import AxesProxyHandler
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import AnonRateThrottle

from registry.api.errors import error_response_serializer


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many failed logins: this account is locked for a while. Ask a registry administrator."
    default_code = "locked_out"


class LoginRateThrottle(AnonRateThrottle):
    scope = "login"


@extend_validation_errors(["authorization"], field_name="non_field_errors", methods=["post"])
class ObtainTokenView(ObtainAuthToken):
    """Exchange a username and password for an API token (``Authorization: Token <key>``).

    Repeated failures lock the username out (django-axes), as on the admin login.
    """

    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=inline_serializer(
            "TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
        ),
        responses={
            200: inline_serializer("TokenResponse", {"token": serializers.CharField()}),
            429: OpenApiResponse(
                error_response_serializer("LoginRefused", ["throttled", "locked_out"]),
                description="Too many attempts from this address, or this username is locked out.",
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        # The body may be any JSON (a list, a number, a NUL in a string PostgreSQL cannot compare):
        # the serializer answers those with a 400, so only a plausible username is looked up here.
        username = request.data.get("username", "") if isinstance(request.data, Mapping) else ""
        credentials = {"username": username if isinstance(username, str) and "\x00" not in username else ""}
        if AxesProxyHandler.is_locked(request._request, credentials):
            raise LockedOut()
        return super().post(request, *args, **kwargs)
