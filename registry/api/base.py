"""The viewset and serializer base every clinical API resource shares.

Rows come from registry.selectors (the admin's own row-level limit), writes go
through the services (the admin's own validation), creates honour Idempotency-Key
and updates require If-Match.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.permissions import DjangoModelPermissions, IsAuthenticated
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from core.api.concurrency import check_version, etag_for, expected_version
from core.api.errors import (
    IdempotencyKeyReusedResponse,
    PreconditionFailedResponse,
    PreconditionRequiredResponse,
)
from core.api.fields import StrictCharField
from core.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.api.idempotency import idempotent
from registry import selectors


class RegistryModelPermissions(DjangoModelPermissions):
    """The role's model permissions (view included), as in the admin."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        model = self._queryset(view).model
        required = set(self.get_required_permissions(request.method, model))
        granted = selectors.role_permissions(request.user)
        return granted is None or required <= granted


class RegistrySerializer(serializers.ModelSerializer):
    """A ModelSerializer whose vocabulary errors list the allowed codes and whose text fields take text only."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        choices = kwargs.get("choices")
        if choices:
            allowed = ", ".join(str(code) for code, _ in choices if code != "")
            messages = dict(kwargs.get("error_messages") or {})
            messages["invalid_choice"] = f'"{{input}}" is not a valid choice. Allowed values: {allowed}.'
            kwargs["error_messages"] = messages
        return field_class, kwargs

    def scope(self, field_name: str, selector) -> None:
        """Limit a related field's choices (validation and the browsable form) to what the user may see.

        Without a request (schema generation) the field keeps its empty queryset.
        """
        request = self.context.get("request")
        field = self.fields.get(field_name)
        if field is None or field.read_only:
            return
        # Another clinic's row and a row that does not exist get the same answer.
        label = field_name.replace("_", " ")
        field.error_messages["does_not_exist"] = f"No such {label} among the rows you may use."
        if request is not None:
            field.queryset = selector(request.user)


IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the version being changed, as returned by GET (e.g. "3").',
)
IDEMPOTENCY_KEY = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    # What idempotent() accepts: 1-255 characters, not blank (HTTP strips blanks around a header value).
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S(?:.*\S)?$"},
    OpenApiParameter.HEADER,
    required=False,
    description="A client-chosen unique key (1-255 characters). Retrying with the same key and body returns "
    "the first response without creating anything; the same key with another body answers 422.",
)
ERROR_RESPONSES = {
    412: OpenApiResponse(PreconditionFailedResponse, description="If-Match names a version no longer current."),
    428: OpenApiResponse(PreconditionRequiredResponse, description="If-Match is missing or malformed."),
}
IDEMPOTENCY_RESPONSES = {
    422: OpenApiResponse(IdempotencyKeyReusedResponse, description="Idempotency-Key reused with another body."),
}


class VersionedViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """List, read and update (If-Match) one kind of clinical row."""

    permission_classes = [IsAuthenticated, RegistryModelPermissions]
    selector = None
    save_service = None
    service_kwarg = ""

    def get_queryset(self):
        return type(self).selector(self.request.user)

    def _save(self, instance):
        try:
            type(self).save_service(actor=self.request.user, **{self.service_kwarg: instance})
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(self.api_errors(exc)) from exc
        return instance

    def api_errors(self, exc: DjangoValidationError) -> dict:
        """Return the service's field errors keyed by the API's field names (event_id, not external_id)."""
        renames = {
            field.source: name
            for name, field in self.get_serializer().fields.items()
            if field.source and field.source != name
        }
        return {renames.get(key, key): value for key, value in as_serializer_error(exc).items()}

    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        return Response(self.get_serializer(instance).data, headers={"ETag": etag_for(instance)})

    @extend_schema(parameters=[IF_MATCH], responses=ERROR_RESPONSES)
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        expected = expected_version(request)
        instance = self.get_object()  # another clinic's row answers 404 before anything else
        check_version(instance, expected)
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        instance.version = expected  # VersionedModel compares it inside the UPDATE
        self._save(instance)
        return Response(self.get_serializer(instance).data, headers={"ETag": etag_for(instance)})

    @extend_schema(parameters=[IF_MATCH], responses=ERROR_RESPONSES)
    def partial_update(self, request, *args, **kwargs):
        return super().partial_update(request, *args, **kwargs)


@extend_validation_errors(["invalid"], field_name=IDEMPOTENCY_HEADER, methods=["post"])
class ClinicalViewSet(VersionedViewSet):
    """VersionedViewSet plus create, honouring Idempotency-Key."""

    def prepare_new(self, validated_data: dict):
        """Return the unsaved instance a create will save (subclasses fill defaults)."""
        return self.get_queryset().model(**validated_data)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], responses=IDEMPOTENCY_RESPONSES)
    def create(self, request, *args, **kwargs):
        return idempotent(request, lambda: self._create(request))

    def _create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self._save(self.prepare_new(serializer.validated_data))
        serializer.instance = instance  # one serializer for input and output: DRF builds fields once
        body = serializer.data
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{instance.pk}/")
        return Response(
            body, status=status.HTTP_201_CREATED, headers={"ETag": etag_for(instance), "Location": location}
        )
