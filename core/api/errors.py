"""One error body for every API failure: {"type", "errors": [{"code", "detail", "attr"}]}.

drf-standardized-errors formats DRF's exceptions; this handler first turns the
services' Django ValidationError (field-level, from the same rules the admin uses),
a lost optimistic-concurrency race and an unreachable database (503, Retry-After)
into their HTTP equivalents, and keeps the field a body parser refused in ``attr``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_standardized_errors.handler import ExceptionHandler
from drf_standardized_errors.openapi_serializers import ClientErrorEnum
from rest_framework import exceptions, serializers, status
from rest_framework.serializers import as_serializer_error

from core.models import ConcurrentUpdate
from core.views import UNAVAILABLE_DETAIL, database_unavailable, log_database_unavailable, retry_after_seconds


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource changed since the version named in If-Match; fetch it again."
    default_code = "stale_version"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = 'Updates must send If-Match with the ETag of the version being changed (e.g. If-Match: "3").'
    default_code = "if_match_required"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"


class DatabaseUnavailable(exceptions.APIException):
    """PostgreSQL cannot be reached: 503 with Retry-After (the handler sends ``wait`` as that header)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = UNAVAILABLE_DETAIL
    default_code = "database_unavailable"

    def __init__(self):
        super().__init__()
        self.wait = retry_after_seconds()


class RegistryExceptionHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(detail=as_serializer_error(exc))
        if isinstance(exc, ConcurrentUpdate):
            return PreconditionFailed()
        if database_unavailable(exc):
            return DatabaseUnavailable()
        return super().convert_known_exceptions(exc)

    def format_exception(self, exc: exceptions.APIException) -> dict:
        data = super().format_exception(exc)
        # A parser's refusal names where the body went wrong (core.parsers.UnstorableText: "sex", "strata.1").
        if getattr(exc, "attr", None) is not None and len(data["errors"]) == 1:
            data["errors"][0]["attr"] = exc.attr
        return data

    def report_exception(self, exc: exceptions.APIException, response) -> None:
        if isinstance(exc, DatabaseUnavailable):
            # One log line as for the admin, not drf-standardized-errors' signal and traceback per request.
            log_database_unavailable(self.context["request"]._request, response, self.exc)
        else:
            super().report_exception(exc, response)


def error_response_serializer(name: str, codes: list[str]):
    """Return a serializer documenting a client-error body with one of ``codes``."""
    item = type(
        f"{name}Error",
        (serializers.Serializer,),
        {
            "code": serializers.ChoiceField(choices=[(c, c) for c in codes]),
            "detail": serializers.CharField(),
            "attr": serializers.CharField(allow_null=True),
        },
    )
    return type(
        f"{name}Response",
        (serializers.Serializer,),
        {
            "type": serializers.ChoiceField(choices=ClientErrorEnum.choices),
            "errors": item(many=True),
        },
    )


PreconditionFailedResponse = error_response_serializer("PreconditionFailed", ["stale_version"])
PreconditionRequiredResponse = error_response_serializer("PreconditionRequired", ["if_match_required"])
IdempotencyKeyReusedResponse = error_response_serializer("IdempotencyKeyReused", ["idempotency_key_reused"])
