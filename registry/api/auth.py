"""Token login for integrations, behind django-axes' brute-force lockout."""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import AnonRateThrottle


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many failed logins: this account is locked for a while. Ask a registry administrator."
    default_code = "locked_out"


class LoginRateThrottle(AnonRateThrottle):
    scope = "login"


class ObtainTokenView(ObtainAuthToken):
    """Exchange a username and password for an API token (``Authorization: Token <key>``).

    Repeated failures lock the username out (django-axes), as on the admin login.
    """

    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=inline_serializer(
            "TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
        ),
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
    )
    def post(self, request, *args, **kwargs):
        credentials = {"username": request.data.get("username", "")}
        if AxesProxyHandler.is_locked(request._request, credentials):
            raise LockedOut()
        return super().post(request, *args, **kwargs)
