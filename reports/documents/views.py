"""Views of a run's documents: the admin report page, its chart images, the XLSX and PDF downloads
(admin and API). Every read goes through reports.selectors.run_for_user: a run the user may
not see answers 404, whoever asks."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from reports import selectors
from reports.choices import HORIZONS, ExportKind, RunStatus
from reports.documents.curves import km_curves
from reports.documents.definitions import NOT_FROZEN
from reports.documents.linelisting import line_listing
from reports.documents.provider import provider_comparison
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


def chart_outcome(run, requested: str | None) -> str:
    """Return the outcome the charts show: the requested one if the run has it, else its first."""
    return requested if requested in run.outcomes else run.outcomes[0]


def chart_figure(run, kind: str, outcome: str, *, results=None, comparisons=None):
    """Return the matplotlib Figure of chart ``kind`` for ``outcome`` of ``run``."""
    if kind == "forest":
        results = list(selectors.results_of_run(run)) if results is None else results
        return _charts().forest_figure(results, outcome=outcome, strata=run.strata)
    if kind == "km":
        return _charts().km_figure(km_curves(run, outcome=outcome), outcome=outcome)
    if kind == "funnel":
        comparisons = provider_comparison(run) if comparisons is None else comparisons
        return _charts().funnel_figure(next(c for c in comparisons if c.outcome == outcome))
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
        run, records=records, comparisons=provider_comparison(run), listing=listing, listing_plan=plan, user=user
    )
    export_log_finish(log=log, row_count=len(records) + len(listing))
    return _attachment(content, XLSX, f"incidence-run-{run.pk}.xlsx")


def pdf_download(user, run, outcome: str | None = None) -> HttpResponse:
    """Return the PDF safety report of ``run`` (charts of ``outcome``), logged in the export log."""
    outcome = chart_outcome(run, outcome)
    log = export_log_start(user=user, kind=ExportKind.RUN_PDF, filters={"run": run.pk, "outcome": outcome}, run=run)
    results = list(selectors.results_of_run(run))
    comparisons = provider_comparison(run)
    pngs = {
        kind: _charts().png(chart_figure(run, kind, outcome, results=results, comparisons=comparisons))
        for kind in CHART_KINDS
    }
    content = _build_pdf(
        run,
        results=results,
        comparison=next(c for c in comparisons if c.outcome == outcome),
        charts=pngs,
        chart_outcome=outcome,
        user=user,
    )
    export_log_finish(log=log, row_count=len(results))
    return _attachment(content, "application/pdf", f"incidence-run-{run.pk}-safety-report.pdf")


def _with_ci(value, low, high, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return f"{value * scale:.3g} ({(low or 0) * scale:.3g} to {(high or 0) * scale:.3g})"


def _result_display(run, r) -> dict:
    return {
        "stratum_values": [r.stratum.get(s, "") for s in run.strata],
        "procedures": r.procedures,
        "cases": r.cases,
        "person_years": r.person_years,
        "proportion_text": _with_ci(r.proportion, r.proportion_ci_low, r.proportion_ci_high, 100),
        "rate_text": _with_ci(r.rate_per_100py, r.rate_ci_low, r.rate_ci_high),
        "km_text": [
            "-" if (v := getattr(r, f"km_cuminc_{label}")) is None else f"{v * 100:.3g}" for label, _ in HORIZONS
        ],
    }


FLAG_TEXT = {"alarm": "above 99.8 % limit", "alert": "above 95 % limit", "low": "below 95 % limit", "": ""}


def _clinic_display(c) -> dict:
    return {
        "clinic": c.clinic,
        "procedures": c.procedures,
        "cases": c.cases,
        "person_years": c.person_years,
        "rate": c.rate,
        "expected": c.expected,
        "limit_95": "{:.3g} to {:.3g}".format(*c.limits["95"]),
        "limit_998": "{:.3g} to {:.3g}".format(*c.limits["99.8"]),
        "flag": c.flag,
        "flag_text": FLAG_TEXT[c.flag],
    }


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
        outcome = chart_outcome(run, request.GET.get("outcome"))
        results = [_result_display(run, r) for r in selectors.results_of_run(run) if r.outcome == outcome]
        comparison = next((c for c in provider_comparison(run) if c.outcome == outcome), None)
        clinics = [_clinic_display(c) for c in comparison.clinics] if comparison else []
        query = f"?outcome={outcome}"
        chart = {k: reverse("admin:reports_incidencerun_chart", args=[run.pk, k]) + query for k in CHART_KINDS}
        context = {
            **self.admin_site.each_context(request),
            "title": f"Incidence run #{run.pk}: report",
            "opts": self.model._meta,
            "run": run,
            "original": run,
            "outcome": outcome,
            "outcome_label": _charts().outcome_label(outcome),
            "outcomes": [(o, _charts().outcome_label(o)) for o in run.outcomes],
            "results": results,
            "comparison": comparison,
            "not_frozen": NOT_FROZEN if run.listing_total is None else "",
            "clinics": clinics,
            "chart": chart,
            "xlsx_url": reverse("admin:reports_incidencerun_xlsx", args=[run.pk]),
            "pdf_url": reverse("admin:reports_incidencerun_pdf", args=[run.pk]) + query,
            "csv_url": reverse("admin:reports_incidencerun_csv", args=[run.pk]),
            "generated_at": timezone.now(),
        }
        return TemplateResponse(request, "admin/reports/incidencerun/report.html", context)

    def chart_view(self, request, run_id: int, kind: str):
        run = self._run(request, run_id)
        if kind not in CHART_KINDS:
            raise Http404("No such chart.")
        content = _charts().png(chart_figure(run, kind, chart_outcome(run, request.GET.get("outcome"))))
        response = HttpResponse(content, content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        return response

    def xlsx_view(self, request, run_id: int):
        return xlsx_download(request.user, self._run(request, run_id))

    def pdf_view(self, request, run_id: int):
        return pdf_download(request.user, self._run(request, run_id), request.GET.get("outcome"))


_BINARY = {200: OpenApiResponse(OpenApiTypes.BINARY, description="The document, as an attachment.")}


class IncidenceRunReportXlsx(APIView):
    """GET: the run's XLSX workbook (Incidence, Provider comparison, Line listing, Definitions); 404 unless
    the user may see the run and it succeeded."""

    @extend_schema(responses=_BINARY)
    def get(self, request, pk: int):
        return xlsx_download(request.user, succeeded_run(request.user, pk))


class IncidenceRunReportPdf(APIView):
    """GET: the run's PDF safety report (charts for ?outcome=, default the run's first outcome); 404 unless
    the user may see the run and it succeeded."""

    @extend_schema(responses=_BINARY)
    def get(self, request, pk: int):
        return pdf_download(request.user, succeeded_run(request.user, pk), request.query_params.get("outcome"))
