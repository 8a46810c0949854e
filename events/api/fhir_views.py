"""FHIR R4 read and search of adverse events (application/fhir+json)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import renderers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from events.fhir import adverse_event_resource, search_bundle
from events.selectors import adverse_events_for_user, with_reviews
from registry.api.base import RegistryModelPermissions

MAX_SEARCH = 500


class FhirJSONRenderer(renderers.JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


class _FhirView(APIView):
    permission_classes = [IsAuthenticated, RegistryModelPermissions]
    renderer_classes = [FhirJSONRenderer, renderers.JSONRenderer]

    def get_queryset(self):
        # Retracted events are not adverse events any more: they are not served as FHIR. The reviews come
        # along: each event's latest one gives the reviewer's causality assessments.
        return with_reviews(adverse_events_for_user(self.request.user).filter(retracted_at__isnull=True))


class FhirAdverseEventRead(_FhirView):
    @extend_schema(
        operation_id="fhir_adverse_event_read", responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT}
    )
    def get(self, request, pk: int):
        """Return one adverse event as a FHIR R4 AdverseEvent resource."""
        event = self.get_queryset().filter(pk=pk).first()
        if event is None:
            raise NotFound()
        return Response(adverse_event_resource(event))


@extend_validation_errors(["invalid"], field_name="patient", methods=["get"])
class FhirAdverseEventSearch(_FhirView):
    @extend_schema(
        operation_id="fhir_adverse_event_search",
        parameters=[
            OpenApiParameter("patient", OpenApiTypes.STR, description="Patient registry id."),
            OpenApiParameter("subject", OpenApiTypes.STR, description="Same as patient (FHIR's name)."),
        ],
        responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return a FHIR R4 searchset Bundle of one patient's adverse events."""
        registry_id = request.query_params.get("patient") or request.query_params.get("subject")
        # (A NUL in the query string never gets here: core.middleware answers it with 400.)
        if not registry_id:
            raise ValidationError({"patient": ["Search by patient: ?patient=<registry id>."]})
        registry_id = registry_id.removeprefix("Patient/")
        events = self.get_queryset().filter(procedure__patient__registry_id=registry_id).order_by("onset_on", "pk")
        return Response(search_bundle(events[:MAX_SEARCH], base_url=request.build_absolute_uri(request.path)))
