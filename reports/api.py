"""The incidence API: POST a run (202 once committed), then GET it for its status and, once succeeded, its rows."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.api.idempotency import idempotent
from registry.api.base import IDEMPOTENCY_KEY, IDEMPOTENCY_RESPONSES
from reports import selectors, services
from reports.choices import Trigger
from reports.serializers import IncidenceRunDetailSerializer, IncidenceRunRequestSerializer, IncidenceRunSerializer

LIST_LIMIT = 100


def _documents_service_errors(view):
    # incidence_run_start() re-validates the parameters as a whole (a stratum named twice, say, or
    # a report over REPORTS_MAX_RESULT_ROWS, on "strata") and answers code "invalid" on any request
    # field or on the request as a whole; a malformed Idempotency-Key is "invalid" too.
    fields = ("strata", "outcomes", "cutoff_on", "onset_window_days", "ci_method", "windows_mode", "unit")
    for field in (*fields, IDEMPOTENCY_HEADER, None):
        view = extend_validation_errors(["invalid"], field_name=field, methods=["post"])(view)
    return view


@_documents_service_errors
class IncidenceRunListCreate(APIView):
    """GET: the latest runs the user may see. POST: start a run (202, then poll its URL)."""

    @extend_schema(responses=IncidenceRunSerializer(many=True))
    def get(self, request):
        runs = selectors.runs_for_user(request.user)[:LIST_LIMIT]
        return Response(IncidenceRunSerializer(runs, many=True).data)

    @extend_schema(
        request=IncidenceRunRequestSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={202: IncidenceRunSerializer, **IDEMPOTENCY_RESPONSES},
        description=(
            "Start an incidence run: 202 once it is stored (queued), then poll its Location. By default the run "
            "uses the registry's outcome definitions (windows_mode registry) and the procedure unit; the run "
            "returns the definitions it used (outcome_definitions). A report whose "
            "result would exceed the configured row limit is refused with 400 on strata. If the task queue "
            "is unreachable the run is accepted all the same and published within about a minute of its return."
        ),
    )
    def post(self, request):
        return idempotent(request, lambda: self._start(request))

    def _start(self, request):
        data = IncidenceRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = services.incidence_run_start(actor=request.user, trigger=Trigger.API, **data.validated_data)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc
        location = request.build_absolute_uri(f"{run.pk}/")
        return Response(
            IncidenceRunSerializer(run).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
        )


class IncidenceRunDetail(APIView):
    """GET: one run (404 if the user may not see it), with its result rows once succeeded."""

    @extend_schema(responses=IncidenceRunDetailSerializer)
    def get(self, request, pk: int):
        run = selectors.run_for_user(request.user, pk)
        results = selectors.results_of_run(run)
        return Response(IncidenceRunDetailSerializer(run, context={"results": results}).data)
