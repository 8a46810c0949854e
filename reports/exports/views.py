"""Export endpoints: line listings (CSV), FHIR R4 Bundle and overdue follow-up visits (CSV).

Each view checks the role's model permission, limits rows with the selectors (a clinic's
staff export their clinics only, registry administrators everything), applies the same
filter set as the matching list endpoint, writes the export-log entry and then streams.
Token and session authentication as everywhere in the API.

Two kinds of line listing (Hardening 18):
- the limited data set (adverse-events.csv and the FHIR Bundle): exact dates, clinic, country,
  registry, procedure and event ids, the verbatim term. Whoever asks must state a data-use
  ``purpose``, recorded in the export log. Registry administrators get every clinic; a
  clinic's own staff keep their own clinic's rows (they see and enter them in the admin
  anyway, and a clinic exporting its own records for its own follow-up or audit is the
  commonest use), but they too state the purpose, so the log tells every extract apart;
- the de-identified listing (adverse-events.deidentified.csv): k-anonymous, no free text, no
  dates, no ids (reports.exports.deidentified); no purpose needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django_filters import rest_framework as df
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import renderers, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from core.dates import today
from core.text import validate_safe_free_text
from events.api.filters import AdverseEventFilter
from events.fhir import adverse_event_resource
from events.selectors import adverse_events_for_user, with_reviews
from registry.api.base import RegistryModelPermissions
from registry.api.filters import FollowUpVisitFilter, StrictBooleanField
from registry.choices import Carrier, Guidance, Processing
from registry.selectors import visits_for_user
from reports.choices import ExportKind
from reports.exports import listing
from reports.exports.deidentified import deidentified_listing
from reports.exports.models import ExportLog
from reports.exports.services import export_log_finish, export_log_start
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


class PurposeSerializer(serializers.Serializer):
    purpose = serializers.CharField(
        max_length=1000,
        validators=[validate_safe_free_text],
        help_text="The data-use purpose of this limited data set extract (e.g. 'quarterly safety review for the "
        "ethics committee'); recorded in the export log.",
    )


PURPOSE = OpenApiParameter(
    "purpose", OpenApiTypes.STR, required=True, description=PurposeSerializer().fields["purpose"].help_text
)


def _purpose(request) -> str:
    """Return the stated data-use purpose; a missing or blank one is a 400 naming the parameter."""
    serializer = PurposeSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["purpose"]


def _filters_without_purpose(request) -> dict:
    # The purpose has its own column in the log; the filters are what selected the rows.
    return {key: value for key, value in _filters(request).items() if key != "purpose"}


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
            codes = ["invalid", "invalid_choice"]
            if name == "purpose":
                codes = ["required", "blank", "max_length", "null_characters_not_allowed", "unsafe_character"]
            view = extend_validation_errors(codes, field_name=name, methods=["get"])(view)
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


class LineListingFilter(AdverseEventFilter):
    """The adverse-event list's filters, plus every procedure attribute the signal screen compares, so that a
    signal (signals.links) links to exactly the events of its value."""

    processing = df.ChoiceFilter(field_name="procedure__processing", choices=Processing.choices)
    carrier = df.ChoiceFilter(field_name="procedure__carrier", choices=Carrier.choices)
    guidance = df.ChoiceFilter(field_name="procedure__guidance", choices=Guidance.choices)
    country = df.CharFilter(field_name="procedure__clinic__country", help_text="Country of the clinic (ISO 3166).")
    product_lot = df.CharFilter(field_name="procedure__product_lot", help_text="Product lot of the procedure.")


@documented_query_errors(LineListingFilter, "include_retracted", "purpose")
class AdverseEventLineListing(_ExportView):
    filter_backends = [DjangoFilterBackend]  # for the schema: the filters are applied in get()
    filterset_class = LineListingFilter

    def get_queryset(self):
        return adverse_events_for_user(self.request.user)

    @extend_schema(
        operation_id="export_adverse_events_csv",
        parameters=[
            PURPOSE,
            OpenApiParameter(
                "include_retracted",
                OpenApiTypes.BOOL,
                description="Add retracted events and a `retracted` column (default: counting events only).",
            ),
        ],
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request):
        """Return the line listing of the adverse events you may see (a limited data set: exact dates, ids,
        verbatim terms), as streaming CSV. State the data-use purpose in `purpose`; it goes to the export log."""
        purpose = _purpose(request)
        include_retracted = _flag(request, "include_retracted") or bool(request.query_params.get("retracted"))
        events = _filtered(LineListingFilter, request, self.get_queryset())
        columns, rows = listing.line_listing(events, include_retracted=include_retracted, export_year=today().year)
        select_sql = compose_select(rows)
        log = export_log_start(
            user=request.user,
            kind=ExportKind.LINE_LISTING_CSV,
            filters=_filters_without_purpose(request),
            purpose=purpose,
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return _csv_response(select_sql=select_sql, columns=columns, log=log, filename=f"ae-line-listing-{stamp}.csv")


@documented_query_errors(AdverseEventFilter)
class AdverseEventDeidentifiedListing(_ExportView):
    filter_backends = [DjangoFilterBackend]
    filterset_class = AdverseEventFilter

    def get_queryset(self):
        return adverse_events_for_user(self.request.user)

    @extend_schema(
        operation_id="export_adverse_events_deidentified_csv",
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request):
        """Return the de-identified line listing of the counting adverse events you may see, as streaming CSV.

        Export-local pseudonyms (new at every export), no free text, no dates (days since the
        procedure), generalised quasi-identifiers: every published combination of birth year,
        sex, country and procedure period is shared by at least DEIDENTIFIED_MIN_K patients; rows
        that cannot reach it are left out. Headers: X-K-Anonymity (the smallest class published),
        X-Generalisation, X-Suppressed-Rows.
        """
        events = _filtered(AdverseEventFilter, request, self.get_queryset())
        columns, select_sql, plan = deidentified_listing(
            events,
            export_year=today().year,
            min_k=settings.DEIDENTIFIED_MIN_K,
            max_suppressed_percent=settings.DEIDENTIFIED_MAX_SUPPRESSED_PERCENT,
        )
        log = export_log_start(user=request.user, kind=ExportKind.DEIDENTIFIED_LISTING_CSV, filters=_filters(request))
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response = _csv_response(
            select_sql=select_sql, columns=columns, log=log, filename=f"ae-deidentified-listing-{stamp}.csv"
        )
        response["X-K-Anonymity"] = str(plan.k or 0)
        response["X-Generalisation"] = plan.node.describe()
        response["X-Suppressed-Rows"] = str(plan.suppressed_rows)
        return response


@documented_query_errors(AdverseEventFilter, "purpose")
class AdverseEventFhirBundle(_ExportView):
    filter_backends = [DjangoFilterBackend]
    filterset_class = AdverseEventFilter
    renderer_classes = [FhirJSONRenderer, renderers.JSONRenderer]

    def get_queryset(self):
        # Retracted events are not adverse events any more: never served as FHIR.
        # Each resource carries the latest medical review's causality (issue 10): prefetched per chunk.
        return with_reviews(listing.not_retracted(adverse_events_for_user(self.request.user)))

    @extend_schema(
        operation_id="export_adverse_events_fhir",
        parameters=[PURPOSE],
        filters=True,
        responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """Return the adverse events you may see (filtered) as a FHIR R4 collection Bundle, streamed: a limited
        data set, so state the data-use purpose in `purpose`; it goes to the export log."""
        purpose = _purpose(request)
        events = _filtered(AdverseEventFilter, request, self.get_queryset()).order_by("onset_on", "id")
        log = export_log_start(
            user=request.user, kind=ExportKind.FHIR_BUNDLE, filters=_filters_without_purpose(request), purpose=purpose
        )
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
        on = today()
        visits = _filtered(FollowUpVisitFilter, request, self.get_queryset().overdue(on=on))
        columns, rows = listing.overdue_visits(visits, on=on)
        select_sql = compose_select(rows)
        log = export_log_start(user=request.user, kind=ExportKind.OVERDUE_CSV, filters=_filters(request))
        return _csv_response(
            select_sql=select_sql, columns=columns, log=log, filename=f"overdue-visits-{on:%Y%m%d}.csv"
        )
