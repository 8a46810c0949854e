"""API views of clinics, patients, procedures and follow-up visits."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.api.concurrency import etag_for
from core.api.idempotency import idempotent
from registry import selectors, services
from registry.api.base import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_RESPONSES,
    ClinicalViewSet,
    RegistryModelPermissions,
    VersionedViewSet,
)
from registry.api.filters import ClinicFilter, FollowUpVisitFilter, PatientFilter, ProcedureFilter
from registry.api.serializers import (
    ClinicSerializer,
    ContactAttemptSerializer,
    FollowUpVisitSerializer,
    PatientSerializer,
    ProcedureSerializer,
    RetractionSerializer,
)


class ChangePermission(RegistryModelPermissions):
    """A workflow action on an existing row (POST or DELETE) needs the role's change permission."""

    perms_map = {
        **RegistryModelPermissions.perms_map,
        "POST": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.change_%(model_name)s"],
    }


def _service_call(viewset, call):
    """Return ``call()``'s result, a Django ValidationError answered as a 400 with the API's field names."""
    try:
        return call()
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(viewset.api_errors(exc)) from exc


class RetractionActions:
    """POST .../retract/ {reason} and POST .../restore/ on a retractable row, answering with the row.

    Subclasses name ``retract_service`` and ``restore_service`` (taking actor= and the row by
    ``service_kwarg``). As for adverse events: Idempotency-Key is honoured, no If-Match is needed (a
    retraction changes no field the client edits), the answer carries the new ETag. Who may retract is
    the service's decision (the clinic's clinicians and coordinators); restoring is for registry
    administrators. Another clinic's row answers 404.
    """

    retract_service = None
    restore_service = None

    def _answer(self, row):
        body = self.serializer_class(row, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_200_OK, headers={"ETag": etag_for(row)})

    def _retract(self, request):
        row = self.get_object()
        serializer = RetractionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data["reason"]
        retract = type(self).retract_service
        try:
            retract(actor=request.user, reason=reason, **{self.service_kwarg: row})
        except DjangoValidationError as exc:
            # The service names the model's field; the request's field is "reason".
            errors = self.api_errors(exc)
            if isinstance(errors, dict) and "retraction_reason" in errors:
                errors["reason"] = errors.pop("retraction_reason")
            raise exceptions.ValidationError(errors) from exc
        return self._answer(row)

    def _restore(self, request):
        row = self.get_object()
        restore = type(self).restore_service
        _service_call(self, lambda: restore(actor=request.user, **{self.service_kwarg: row}))
        return self._answer(row)


def retraction_actions(serializer_class, noun: str):
    """Return the retract and restore actions of one resource, documented with its serializer."""

    @extend_schema(
        request=RetractionSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializer_class,
            400: OpenApiResponse(description="Missing reason, already retracted, or unsafe characters"),
            **IDEMPOTENCY_RESPONSES,
        },
    )
    @action(detail=True, methods=["post"])
    def retract(self, request, pk=None):
        return idempotent(request, lambda: self._retract(request))

    retract.__doc__ = f"Retract the {noun} with a reason: it stays on record but leaves statistics and overdue lists."

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializer_class,
            400: OpenApiResponse(description="Not retracted"),
            403: OpenApiResponse(description="Not a registry administrator"),
            **IDEMPOTENCY_RESPONSES,
        },
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        return idempotent(request, lambda: self._restore(request))

    restore.__doc__ = f"Restore a retracted {noun} (registry administrators only): it counts again."
    return retract, restore


class ClinicViewSet(viewsets.ReadOnlyModelViewSet):
    """Clinics the user belongs to (every clinic for a registry administrator)."""

    serializer_class = ClinicSerializer
    permission_classes = [IsAuthenticated, RegistryModelPermissions]
    filterset_class = ClinicFilter

    def get_queryset(self):
        return selectors.clinics_for_user(self.request.user)


class PatientViewSet(RetractionActions, ClinicalViewSet):
    """Pseudonymous patients: no names, birth year only. Retracted patients stay listed (retracted=true)."""

    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    selector = staticmethod(selectors.patients_for_user)
    save_service = staticmethod(services.patient_save)
    retract_service = staticmethod(services.patient_retract)
    restore_service = staticmethod(services.patient_restore)
    service_kwarg = "patient"
    retract, restore = retraction_actions(PatientSerializer, "patient")

    def prepare_new(self, validated_data):
        if "clinic" not in validated_data:
            clinics = list(selectors.clinics_for_user(self.request.user)[:2])
            if len(clinics) != 1:
                raise ValidationError({"clinic": ["This field is required."]})
            validated_data["clinic"] = clinics[0]
        return super().prepare_new(validated_data)

    def get_serializer_class(self):
        return RetractionSerializer if self.action == "retract" else PatientSerializer


class ProcedureViewSet(RetractionActions, ClinicalViewSet):
    """Injections; creating one generates its follow-up schedule (day 2 to year 5)."""

    serializer_class = ProcedureSerializer
    filterset_class = ProcedureFilter
    selector = staticmethod(selectors.procedures_for_user)
    save_service = staticmethod(services.procedure_save)
    retract_service = staticmethod(services.procedure_retract)
    restore_service = staticmethod(services.procedure_restore)
    service_kwarg = "procedure"
    retract, restore = retraction_actions(ProcedureSerializer, "procedure")

    def get_serializer_class(self):
        return RetractionSerializer if self.action == "retract" else ProcedureSerializer

    def get_permissions(self):
        if self.action == "lost_to_follow_up":
            return [IsAuthenticated(), ChangePermission()]
        return super().get_permissions()

    @extend_schema(
        methods=["POST"],
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: ProcedureSerializer,
            400: OpenApiResponse(description="Too few contact attempts logged, already marked, or retracted"),
            403: OpenApiResponse(description="Not a coordinator of the clinic nor a registry administrator"),
            **IDEMPOTENCY_RESPONSES,
        },
        description="Mark the procedure lost to follow-up (today), once settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS "
        "contact attempts are logged on its open visits; it then leaves the overdue list. Coordinators only.",
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses={
            200: ProcedureSerializer,
            400: OpenApiResponse(description="Not marked lost to follow-up"),
            403: OpenApiResponse(description="Not a coordinator of the clinic nor a registry administrator"),
        },
        description="Undo the lost-to-follow-up mark: the procedure's open visits are chased again.",
    )
    @action(detail=True, methods=["post", "delete"], url_path="lost-to-follow-up", url_name="lost-to-follow-up")
    def lost_to_follow_up(self, request, pk=None):
        if request.method == "DELETE":
            return self._lost(request, services.procedure_unmark_lost_to_follow_up)
        return idempotent(request, lambda: self._lost(request, services.procedure_mark_lost_to_follow_up))

    def _lost(self, request, service):
        procedure = self.get_object()
        _service_call(self, lambda: service(actor=request.user, procedure=procedure))
        return self._answer(procedure)


class FollowUpVisitViewSet(RetractionActions, VersionedViewSet):
    """Scheduled visits; record a completion with PATCH (completed_on, contact_method, notes) and If-Match."""

    serializer_class = FollowUpVisitSerializer
    filterset_class = FollowUpVisitFilter
    selector = staticmethod(selectors.visits_for_user)
    save_service = staticmethod(services.visit_save)
    retract_service = staticmethod(services.visit_retract)
    restore_service = staticmethod(services.visit_restore)
    service_kwarg = "visit"
    retract, restore = retraction_actions(FollowUpVisitSerializer, "follow-up visit")

    def get_serializer_class(self):
        if self.action == "retract":
            return RetractionSerializer
        if self.action == "contact_attempts":
            return ContactAttemptSerializer
        return FollowUpVisitSerializer

    def get_permissions(self):
        if self.action == "contact_attempts" and self.request.method == "POST":
            return [IsAuthenticated(), ChangePermission()]
        return super().get_permissions()

    @extend_schema(
        methods=["GET"],
        responses=ContactAttemptSerializer(many=True),
        description="The contact attempts logged on this visit, oldest first.",
    )
    @extend_schema(
        methods=["POST"],
        request=ContactAttemptSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: ContactAttemptSerializer,
            400: OpenApiResponse(
                description="Visit completed or retracted, or a date in the future or before the procedure"
            ),
            **IDEMPOTENCY_RESPONSES,
        },
        description="Log an attempt to reach the patient about this open visit (clinicians and coordinators).",
    )
    # A visit's few attempts come whole: no pagination, and the visits' list filters do not apply.
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="contact-attempts",
        url_name="contact-attempts",
        pagination_class=None,
        filter_backends=[],
    )
    def contact_attempts(self, request, pk=None):
        if request.method == "POST":
            return idempotent(request, lambda: self._log_attempt(request))
        visit = self.get_object()
        attempts = visit.contact_attempts.select_related("recorded_by").order_by("attempted_on", "id")
        return Response(ContactAttemptSerializer(attempts, many=True, context=self.get_serializer_context()).data)

    def _log_attempt(self, request):
        visit = self.get_object()
        serializer = ContactAttemptSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        attempt = _service_call(
            self, lambda: services.contact_attempt_log(actor=request.user, visit=visit, **serializer.validated_data)
        )
        body = ContactAttemptSerializer(attempt, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)
