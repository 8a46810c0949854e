"""API views of clinics, patients, procedures and follow-up visits."""

from __future__ import annotations

from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated

from registry import selectors, services
from registry.api.base import ClinicalViewSet, RegistryModelPermissions, VersionedViewSet
from registry.api.filters import ClinicFilter, FollowUpVisitFilter, PatientFilter, ProcedureFilter
from registry.api.serializers import (
    ClinicSerializer,
    FollowUpVisitSerializer,
    PatientSerializer,
    ProcedureSerializer,
)


class ClinicViewSet(viewsets.ReadOnlyModelViewSet):
    """Clinics the user belongs to (every clinic for a registry administrator)."""

    serializer_class = ClinicSerializer
    permission_classes = [IsAuthenticated, RegistryModelPermissions]
    filterset_class = ClinicFilter

    def get_queryset(self):
        return selectors.clinics_for_user(self.request.user)


class PatientViewSet(ClinicalViewSet):
    """Pseudonymous patients: no names, birth year only."""

    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    selector = staticmethod(selectors.patients_for_user)
    save_service = staticmethod(services.patient_save)
    service_kwarg = "patient"

    def prepare_new(self, validated_data):
        if "clinic" not in validated_data:
            clinics = list(selectors.clinics_for_user(self.request.user)[:2])
            if len(clinics) != 1:
                raise ValidationError({"clinic": ["This field is required."]})
            validated_data["clinic"] = clinics[0]
        return super().prepare_new(validated_data)


class ProcedureViewSet(ClinicalViewSet):
    """Injections; creating one generates its follow-up schedule (day 2 to year 5)."""

    serializer_class = ProcedureSerializer
    filterset_class = ProcedureFilter
    selector = staticmethod(selectors.procedures_for_user)
    save_service = staticmethod(services.procedure_save)
    service_kwarg = "procedure"


class FollowUpVisitViewSet(VersionedViewSet):
    """Scheduled visits; record a completion with PATCH (completed_on, contact_method, notes) and If-Match."""

    serializer_class = FollowUpVisitSerializer
    filterset_class = FollowUpVisitFilter
    selector = staticmethod(selectors.visits_for_user)
    save_service = staticmethod(services.visit_save)
    service_kwarg = "visit"
