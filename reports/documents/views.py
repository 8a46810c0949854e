"""Views of a run's documents: the admin report page, its chart images, the XLSX and PDF downloads
(admin and API). Every read goes through reports.selectors.run_for_user: a run the user may
not see answers 404, whoever asks."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from reports import selectors
from reports.choices import ExportKind, RunStatus
from reports.documents.curves import km_curves, outcomes_with_late_events
from reports.documents.definitions import MIN_UNITS, NO_COMPARISON, NOT_FROZEN, methods, outcome_definitions
from reports.documents.linelisting import line_listing
from reports.documents.page import LATE_DAY, chart_grouping, chart_outcome, report_context
from reports.documents.provider import provider_comparisons
from reports.exports.services import export_log_finish, export_log_start


# matplotlib, reportlab and openpyxl load on the first document, not in every web worker
# at start-up (they cost ~60 MB of RSS a process that only streams CSV never needs).
def _charts():
    from reports.documents import charts

    return charts


def _build_workbook(*args, **kwargs):
    from reports.documents.workbook import build_workbook

    return build_workbook(*args, **kwargs)


def _build_pdf(*args, **kwargs):
    from reports.documents.pdf import build_pdf

    return build_pdf(*args, **kwargs)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHART_KINDS = ("forest", "km", "funnel")


def succeeded_run(user, run_id: int):
    """Return the succeeded run ``run_id`` if ``user`` may see it; Http404 otherwise."""
    run = selectors.run_for_user(user, run_id)
    if run.status != RunStatus.SUCCEEDED:
        raise Http404("This run has no results yet.")
    return run


def chart_figure(run, kind: str, outcome: str, *, results=None, comparisons=None, grouping: str | None = None):
    """Return the matplotlib Figure of chart ``kind`` for ``outcome`` of ``run`` (the funnel: by ``grouping``)."""
    if kind == "forest":
        results = list(selectors.results_of_run(run).filter(outcome=outcome)) if results is None else results
        acute = next(d.acute for d in outcome_definitions(run) if d.code == outcome)
        return _charts().forest_figure(results, outcome=outcome, strata=run.strata, acute=acute, min_units=MIN_UNITS)
    if kind == "km":
        return _charts().km_figure(km_curves(run, outcome=outcome), outcome=outcome)
    if kind == "funnel":
        grouping = chart_grouping(grouping)
        comparisons = provider_comparisons(run, outcome=outcome) if comparisons is None else comparisons
        comparison = next((c for c in comparisons if c.outcome == outcome and c.grouping == grouping), None)
        if comparison is None:
            return _charts().message_figure(NO_COMPARISON)
        return _charts().funnel_figure(comparison)
    raise Http404("No such chart.")


def _attachment(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def xlsx_download(user, run) -> HttpResponse:
    """Return the XLSX workbook of ``run`` as an attachment, logged in the export log."""
    log = export_log_start(user=user, kind=ExportKind.RUN_XLSX, filters={"run": run.pk}, run=run)
    records = list(selectors.results_of_run(run).values())
    listing, plan = line_listing(run, user)
    content = _build_workbook(
        run, records=records, comparisons=provider_comparisons(run), listing=listing, listing_plan=plan, user=user
    )
    export_log_finish(log=log, row_count=len(records) + len(listing))
    return _attachment(content, XLSX, f"incidence-run-{run.pk}.xlsx")


def pdf_download(user, run, outcome: str | None = None) -> HttpResponse:
    """Return the PDF safety report of ``run`` (charts and provider comparison of ``outcome``), logged in the
    export log."""
    outcome = chart_outcome(run, outcome)
    log = export_log_start(user=user, kind=ExportKind.RUN_PDF, filters={"run": run.pk, "outcome": outcome}, run=run)
    results = list(selectors.results_of_run(run))
    comparisons = provider_comparisons(run, outcome=outcome)
    charts = {"forest": chart_figure(run, "forest", outcome, results=results)}
    if outcome in outcomes_with_late_events(run, after_day=LATE_DAY):
        charts["km"] = chart_figure(run, "km", outcome)
    for comparison in comparisons:
        charts[f"funnel_{comparison.grouping}"] = _charts().funnel_figure(comparison)
    content = _build_pdf(
        run,
        results=results,
        comparisons=comparisons,
        charts={key: _charts().png(figure) for key, figure in charts.items()},
        chart_outcome=outcome,
        user=user,
    )
    export_log_finish(log=log, row_count=len(results))
    return _attachment(content, "application/pdf", f"incidence-run-{run.pk}-safety-report.pdf")


class RunDocumentsAdminMixin:
    """Admin views of a run's report page, charts and downloads (mixed into IncidenceRunAdmin)."""

    def document_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:run_id>/report/", wrap(self.report_view), name="reports_incidencerun_report"),
            path("<int:run_id>/chart/<str:kind>.png", wrap(self.chart_view), name="reports_incidencerun_chart"),
            path("<int:run_id>/xlsx/", wrap(self.xlsx_view), name="reports_incidencerun_xlsx"),
            path("<int:run_id>/pdf/", wrap(self.pdf_view), name="reports_incidencerun_pdf"),
        ]

    def _run(self, request, run_id: int):
        if not self.has_view_permission(request):
            raise Http404("No such incidence run.")
        return succeeded_run(request.user, run_id)

    def report_view(self, request, run_id: int):
        run = self._run(request, run_id)
        page = report_context(run, request.GET)
        outcome = page["outcome"]
        chart = reverse("admin:reports_incidencerun_chart", args=[run.pk, "KIND"])
        charts = {
            "forest": chart.replace("KIND", "forest") + f"?{urlencode({'outcome': outcome})}",
            "km": chart.replace("KIND", "km") + f"?{urlencode({'outcome': outcome})}",
            "funnel": chart.replace("KIND", "funnel")
            + f"?{urlencode({'outcome': outcome, 'grouping': page['grouping']})}",
        }
        context = {
            **self.admin_site.each_context(request),
            **page,
            "title": f"Incidence run #{run.pk}: report",
            "opts": self.model._meta,
            "run": run,
            "original": run,
            "outcome_label": page["definition"].label,
            "not_frozen": NOT_FROZEN if run.listing_total is None else "",
            "no_comparison": NO_COMPARISON,
            "methods": methods(run),
            "chart": charts,
            "xlsx_url": reverse("admin:reports_incidencerun_xlsx", args=[run.pk]),
            "pdf_url": reverse("admin:reports_incidencerun_pdf", args=[run.pk]) + f"?{urlencode({'outcome': outcome})}",
            "csv_url": reverse("admin:reports_incidencerun_csv", args=[run.pk]),
            "generated_at": timezone.now(),
        }
        return TemplateResponse(request, "admin/reports/incidencerun/report.html", context)

    def chart_view(self, request, run_id: int, kind: str):
        run = self._run(request, run_id)
        if kind not in CHART_KINDS:
            raise Http404("No such chart.")
        outcome = chart_outcome(run, request.GET.get("outcome"))
        content = _charts().png(chart_figure(run, kind, outcome, grouping=request.GET.get("grouping")))
        response = HttpResponse(content, content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        return response

    def xlsx_view(self, request, run_id: int):
        return xlsx_download(request.user, self._run(request, run_id))

    def pdf_view(self, request, run_id: int):
        return pdf_download(request.user, self._run(request, run_id), request.GET.get("outcome"))


_BINARY = {200: OpenApiResponse(OpenApiTypes.BINARY, description="The document, as an attachment.")}


class IncidenceRunReportXlsx(APIView):
    """GET: the run's XLSX workbook (Incidence, Provider comparison, Funnel data, Funnel plots, Line listing,
    Outcome definitions, Definitions); 404 unless the user may see the run and it succeeded."""

    @extend_schema(responses=_BINARY)
    def get(self, request, pk: int):
        return xlsx_download(request.user, succeeded_run(request.user, pk))


class IncidenceRunReportPdf(APIView):
    """GET: the run's PDF safety report (charts and provider comparison for ?outcome=, default the run's first
    outcome); 404 unless the user may see the run and it succeeded."""

    @extend_schema(responses=_BINARY)
    def get(self, request, pk: int):
        return pdf_download(request.user, succeeded_run(request.user, pk), request.query_params.get("outcome"))
