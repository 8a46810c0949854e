"""Export endpoints: line listing (CSV), FHIR R4 Bundle and overdue follow-up visits (CSV).

Each view checks the role's model permission, limits rows with the selectors (a clinic's
staff export their clinics only, registry administrators everything), applies the same
filter set as the matching list endpoint, writes the export-log entry and then streams.
Token and session authentication as everywhere in the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import renderers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from events.api.filters import AdverseEventFilter
from events.fhir import adverse_event_resource
from events.selectors import adverse_events_for_user
from registry.api.base import RegistryModelPermissions
from registry.api.filters import FollowUpVisitFilter, StrictBooleanField
from registry.rules import today
from registry.selectors import visits_for_user
from reports.choices import ExportKind
from reports.export_services import export_log_finish, export_log_start
from reports.exportlog import ExportLog
from reports.exports import listing
from reports.exports.streaming import compose_select, copy_csv_stream

FHIR_BATCH = 200  # entries per chunk written


class CSVRenderer(renderers.BaseRenderer):
    """Lets a client ask for text/csv; only error bodies pass through here, as JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


class FhirJSONRenderer(renderers.JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


def _filters(request) -> dict:
    """Return the query parameters as the export log stores them (one value, or a list of several)."""
    return {key: values[0] if len(values) == 1 else values for key, values in request.query_params.lists()}


def _reject_nul(request) -> None:
    # PostgreSQL text cannot hold a NUL: answer 400, not a 500 from the database.
    for key, values in request.query_params.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            raise ValidationError({key.replace("\x00", ""): ["NUL characters are not allowed."]})


def _flag(request, name: str) -> bool:
    try:
        return bool(StrictBooleanField(required=False).clean(request.query_params.get(name)))
    except Exception as exc:
        raise ValidationError({name: ["Use true or false."]}) from exc


def _filtered(filterset_class, request, queryset):
    filterset = filterset_class(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)  # the list endpoints' error codes
    return filterset.qs


def documented_query_errors(filterset_class, *extra: str):
    """Return a class decorator documenting the 400 a bad query parameter gets, per parameter."""

    def decorate(view):
        for name in (*filterset_class.base_filters, *extra):
            view = extend_validation_errors(["invalid", "invalid_choice"], field_name=name, methods=["get"])(view)
        return view

    return decorate


def _csv_response(*, select_sql: str, columns, log: ExportLog, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        copy_csv_stream(select_sql=select_sql, columns=columns, log=log), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # clinical data: never kept by a shared cache
    response["X-Export-Log"] = str(log.pk)
    return response


class _ExportView(APIView):
    permission_classes = [IsAuthenticated, RegistryModelPermissions]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]


@documented_query_errors(AdverseEventFilter, "include_retracted")
class AdverseEventLineListing(_ExportView):
    filter_backends = [DjangoFilterBackend]  # for the schema: the filters are applied in get()
    filterset_class = AdverseEventFilter

    def get_queryset(self):
        return adverse_events_for_user(self.request.user)

    @extend_schema(
        operation_id="export_adverse_events_csv",
        parameters=[
            OpenApiParameter(
                "include_retracted",
                OpenApiTypes.BOOL,
                description="Add retracted events and a `retracted` column (default: counting events only).",
            )
        ],
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request):
        """Return the de-identified line listing of the adverse events you may see, as streaming CSV."""
        _reject_nul(request)
        include_retracted = _flag(request, "include_retracted") or bool(request.query_params.get("retracted"))
        events = _filtered(AdverseEventFilter, request, self.get_queryset())
        columns, rows = listing.line_listing(events, include_retracted=include_retracted)
        select_sql = compose_select(rows)
        log = export_log_start(user=request.user, kind=ExportKind.LINE_LISTING_CSV, filters=_filters(request))
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return _csv_response(select_sql=select_sql, columns=columns, log=log, filename=f"ae-line-listing-{stamp}.csv")


@documented_query_errors(AdverseEventFilter)
class AdverseEventFhirBundle(_ExportView):
    filter_backends = [DjangoFilterBackend]
    filterset_class = AdverseEventFilter
    renderer_classes = [FhirJSONRenderer, renderers.JSONRenderer]

    def get_queryset(self):
        # Retracted events are not adverse events any more: never served as FHIR.
        return adverse_events_for_user(self.request.user).filter(retracted_at__isnull=True)

    @extend_schema(
        operation_id="export_adverse_events_fhir",
        filters=True,
        responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return the adverse events you may see (filtered) as a FHIR R4 collection Bundle, streamed."""
        _reject_nul(request)
        events = _filtered(AdverseEventFilter, request, self.get_queryset()).order_by("onset_on", "id")
        log = export_log_start(user=request.user, kind=ExportKind.FHIR_BUNDLE, filters=_filters(request))
        base = request.build_absolute_uri(reverse("fhir-adverseevent-search"))
        response = StreamingHttpResponse(
            _bundle_stream(events, base=base, log=log), content_type="application/fhir+json"
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="ae-bundle-{stamp}.fhir.json"'
        response["Cache-Control"] = "no-store"
        response["X-Export-Log"] = str(log.pk)
        return response


def _bundle_stream(events, *, base: str, log: ExportLog) -> Iterator[bytes]:
    """Yield a FHIR collection Bundle of ``events`` piece by piece, then record the count in ``log``.

    FHIR JSON forbids empty arrays, so "entry" is opened with the first event only.
    """
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": timezone.now().isoformat()}
    yield json.dumps(head)[:-1].encode()  # the object stays open for the entries
    count = 0
    batch: list[str] = []
    for event in events.iterator(chunk_size=2000):
        entry = {"fullUrl": f"{base}/{event.pk}", "resource": adverse_event_resource(event)}
        batch.append(("," if count else ', "entry": [') + json.dumps(entry))
        count += 1
        if len(batch) >= FHIR_BATCH:
            yield "".join(batch).encode()
            batch.clear()
    yield ("".join(batch) + ("]}" if count else "}")).encode()
    export_log_finish(log=log, row_count=count)


@documented_query_errors(FollowUpVisitFilter)
class OverdueVisits(_ExportView):
    filter_backends = [DjangoFilterBackend]
    filterset_class = FollowUpVisitFilter

    def get_queryset(self):
        return visits_for_user(self.request.user)

    @extend_schema(
        operation_id="export_overdue_visits_csv",
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request):
        """Return the follow-up visits past their window (not completed) of your clinics, as streaming CSV."""
        _reject_nul(request)
        on = today()
        visits = _filtered(FollowUpVisitFilter, request, self.get_queryset().overdue(on=on))
        columns, rows = listing.overdue_visits(visits, on=on)
        select_sql = compose_select(rows)
        log = export_log_start(user=request.user, kind=ExportKind.OVERDUE_CSV, filters=_filters(request))
        return _csv_response(
            select_sql=select_sql, columns=columns, log=log, filename=f"overdue-visits-{on:%Y%m%d}.csv"
        )
