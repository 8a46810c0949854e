"""Adverse-event API: create, update, retract, restore; never delete."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import IsAuthenticated

from events import services
from events.api.case_serializers import FollowUpReportCreateSerializer, MedicalReviewSerializer
from events.api.case_views import CaseLifecycleActions
from events.api.filters import AdverseEventFilter
from events.api.serializers import AdverseEventSerializer
from events.selectors import adverse_events_for_user
from registry.api.base import ClinicalViewSet
from registry.api.serializers import RetractionSerializer
from registry.api.views import RetractionActions, retraction_actions


class AdverseEventViewSet(CaseLifecycleActions, RetractionActions, ClinicalViewSet):
    """Adverse events after a procedure. Retracted events stay listed (retracted=true) for audit.

    Each event's follow-up reports and medical reviews: .../{id}/follow-ups/ and .../{id}/reviews/.
    """

    serializer_class = AdverseEventSerializer
    filterset_class = AdverseEventFilter
    selector = staticmethod(adverse_events_for_user)
    save_service = staticmethod(services.adverse_event_save)
    retract_service = staticmethod(services.adverse_event_retract)
    restore_service = staticmethod(services.adverse_event_restore)
    service_kwarg = "event"
    retract, restore = retraction_actions(AdverseEventSerializer, "event")

    def get_serializer_class(self):
        return {
            "retract": RetractionSerializer,
            "follow_ups": FollowUpReportCreateSerializer,
            "reviews": MedicalReviewSerializer,
        }.get(self.action, AdverseEventSerializer)

    def get_permissions(self):
        if self.action == "destroy":  # answer 405 with the reason, whatever the role
            return [IsAuthenticated()]
        case = self.case_permissions()
        if case is not None:
            return [IsAuthenticated(), *case]
        return super().get_permissions()

    @extend_schema(exclude=True)
    def destroy(self, request, *args, **kwargs):
        raise MethodNotAllowed("DELETE", detail="Adverse events are never deleted; POST .../retract/ with a reason.")
