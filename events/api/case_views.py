"""The case's life in the API: GET/POST /api/v1/adverse-events/{id}/follow-ups/ and .../reviews/.

Actions of the adverse-event viewset, so the event comes through its row-level limit first: another
clinic's event answers 404, follow-ups and reviews included. POSTs honour Idempotency-Key; a
follow-up POST may carry If-Match (the event's ETag) to refuse news based on a stale event (412).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from core.api.concurrency import check_version, expected_version
from core.api.idempotency import idempotent
from events import services
from events.api.case_serializers import (
    FollowUpReportCreateSerializer,
    FollowUpReportSerializer,
    MedicalReviewSerializer,
)
from events.choices import FOLLOW_UP_FIELDS
from events.models import AdverseEvent
from registry.api.base import ERROR_RESPONSES, IDEMPOTENCY_KEY, IDEMPOTENCY_RESPONSES, RegistryModelPermissions

IF_MATCH_OPTIONAL = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description='The event\'s ETag as last read (e.g. "3"): the follow-up is refused (412) if the event changed since.',
)


class ChangeEventPermission(RegistryModelPermissions):
    """A follow-up changes its event: POST needs the role's change permission on adverse events."""

    perms_map = {**RegistryModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class ReadEventPermission(RegistryModelPermissions):
    """A review changes no clinical data: reading the event is enough here; the service decides who reviews."""

    perms_map = {**RegistryModelPermissions.perms_map, "POST": ["%(app_label)s.view_%(model_name)s"]}


def follow_up_errors(exc: DjangoValidationError) -> dict:
    """Return the service's errors as the request names them: the event's fields under "changes"."""
    errors = as_serializer_error(exc)
    changes = {name: errors.pop(name) for name in list(errors) if name in FOLLOW_UP_FIELDS}
    if "changes" in errors:
        changes["non_field_errors"] = errors.pop("changes")
    if "event" in errors:
        errors.setdefault("non_field_errors", []).extend(errors.pop("event"))
    if changes:
        errors["changes"] = changes
    return errors


class CaseLifecycleActions:
    """The follow-ups and reviews actions of AdverseEventViewSet."""

    def case_permissions(self):
        """Return the permissions of the case actions, or None for the viewset's own."""
        if self.action == "follow_ups":
            return [ChangeEventPermission()]
        if self.action == "reviews":
            return [ReadEventPermission()]
        return None

    @extend_schema(
        methods=["GET"],
        responses=FollowUpReportSerializer(many=True),
        description="The event's follow-up reports, first to last.",
    )
    @extend_schema(
        methods=["POST"],
        request=FollowUpReportCreateSerializer,
        parameters=[IDEMPOTENCY_KEY, IF_MATCH_OPTIONAL],
        responses={
            201: FollowUpReportSerializer,
            400: OpenApiResponse(
                description="A received date before awareness or in the future, no narrative, a field a follow-up "
                "cannot change, a change the event's rules refuse (under changes.<field>), or a retracted event"
            ),
            403: OpenApiResponse(description="Not a clinician or coordinator of the event's clinic"),
            412: ERROR_RESPONSES[412],
            428: OpenApiResponse(ERROR_RESPONSES[428].response, description="If-Match is malformed."),
            **IDEMPOTENCY_RESPONSES,
        },
        description="Record a follow-up report: its changes are applied to the event (validated and audited "
        "as an edit; the event's version and ETag move on) and kept as {field: [old, new]}.",
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="follow-ups",
        url_name="follow-ups",
        pagination_class=None,
        filter_backends=[],
    )
    def follow_ups(self, request, pk=None):
        if request.method == "POST":
            return idempotent(request, lambda: self._add_follow_up(request))
        event = self.get_object()
        reports = event.follow_ups.select_related("created_by").order_by("number")
        return Response(FollowUpReportSerializer(reports, many=True, context=self.get_serializer_context()).data)

    def _add_follow_up(self, request):
        event = self.get_object()  # another clinic's event answers 404 before anything else
        expected = expected_version(request) if request.headers.get("If-Match") else None
        serializer = FollowUpReportCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            if expected is not None:
                # Held until the follow-up is stored: nobody changes the event between the check and the write.
                check_version(AdverseEvent.objects.select_for_update().get(pk=event.pk), expected)
            try:
                report = services.follow_up_report_create(
                    actor=request.user,
                    event=event,
                    received_on=data["received_on"],
                    narrative=data["narrative"],
                    changes=dict(data.get("changes") or {}),
                )
            except DjangoValidationError as exc:
                raise exceptions.ValidationError(follow_up_errors(exc)) from exc
        body = FollowUpReportSerializer(report, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        responses=MedicalReviewSerializer(many=True),
        description="The event's medical reviews, latest (current) first. The site's own assessment stays on "
        "the event; a review never changes it.",
    )
    @extend_schema(
        methods=["POST"],
        request=MedicalReviewSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: MedicalReviewSerializer,
            400: OpenApiResponse(
                description="Serious without a criterion (or a criterion without serious), or a retracted event"
            ),
            403: OpenApiResponse(description="Not a safety reviewer nor a registry administrator"),
            **IDEMPOTENCY_RESPONSES,
        },
        description="Record a medical review (safety reviewers and registry administrators): seriousness, WHO-UMC "
        "causality to the procedure and to the product, and expectedness against the reference safety information.",
    )
    @action(detail=True, methods=["get", "post"], url_path="reviews", url_name="reviews", pagination_class=None,
            filter_backends=[])  # fmt: skip
    def reviews(self, request, pk=None):
        if request.method == "POST":
            return idempotent(request, lambda: self._record_review(request))
        event = self.get_object()
        reviews = event.reviews.select_related("reviewer", "expectedness_basis").order_by("-reviewed_at", "-id")
        return Response(MedicalReviewSerializer(reviews, many=True, context=self.get_serializer_context()).data)

    def _record_review(self, request):
        event = self.get_object()
        serializer = MedicalReviewSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        try:
            review = services.medical_review_record(actor=request.user, event=event, **serializer.validated_data)
        except DjangoValidationError as exc:
            errors = as_serializer_error(exc)
            if "event" in errors:
                errors.setdefault("non_field_errors", []).extend(errors.pop("event"))
            raise exceptions.ValidationError(errors) from exc
        body = MedicalReviewSerializer(review, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)
