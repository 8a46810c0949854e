"""Adverse-event API: create, update, retract; never delete."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.api.concurrency import etag_for
from core.api.idempotency import idempotent
from events import services
from events.api.filters import AdverseEventFilter
from events.api.serializers import AdverseEventSerializer, RetractionSerializer
from events.selectors import adverse_events_for_user
from registry.api.base import IDEMPOTENCY_KEY, ClinicalViewSet


class AdverseEventViewSet(ClinicalViewSet):
    """Adverse events after a procedure. Retracted events stay listed (retracted=true) for audit."""

    serializer_class = AdverseEventSerializer
    filterset_class = AdverseEventFilter
    selector = staticmethod(adverse_events_for_user)
    save_service = staticmethod(services.adverse_event_save)
    service_kwarg = "event"

    @extend_schema(
        request=RetractionSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: AdverseEventSerializer,
            400: OpenApiResponse(description="Missing reason or already retracted"),
        },
    )
    @action(detail=True, methods=["post"])
    def retract(self, request, pk=None):
        """Retract the event with a reason: it stays on record but leaves every statistic."""
        return idempotent(request, lambda: self._retract(request))

    def _retract(self, request):
        event = self.get_object()
        serializer = RetractionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.adverse_event_retract(actor=request.user, event=event, reason=serializer.validated_data["reason"])
        return Response(
            AdverseEventSerializer(event, context=self.get_serializer_context()).data,
            status=status.HTTP_200_OK,
            headers={"ETag": etag_for(event)},
        )

    def get_serializer_class(self):
        return RetractionSerializer if self.action == "retract" else AdverseEventSerializer

    def get_permissions(self):
        if self.action == "destroy":  # answer 405 with the reason, whatever the role
            return [IsAuthenticated()]
        return super().get_permissions()

    @extend_schema(exclude=True)
    def destroy(self, request, *args, **kwargs):
        raise MethodNotAllowed("DELETE", detail="Adverse events are never deleted; POST .../retract/ with a reason.")
