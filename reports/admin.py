"""The Reports page: start an incidence run from a form, read finished runs (never edit them)."""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse

from reports import selectors, services
from reports.choices import (
    DEFAULT_STRATA,
    HORIZONS,
    OUTCOME_LABELS,
    OUTCOMES,
    CIMethod,
    ExportKind,
    RunStatus,
    Stratum,
    Trigger,
)
from reports.documents.views import RunDocumentsAdminMixin
from reports.exports.admin import ExportLogAdmin
from reports.exports.incidence_csv import header, write_csv
from reports.exports.services import export_log_finish, export_log_start
from reports.models import ExportLog, IncidenceRun

RESULTS_SHOWN = 2000


class IncidenceRunForm(forms.Form):
    strata = forms.MultipleChoiceField(
        choices=Stratum.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=list(DEFAULT_STRATA),
        help_text="Rows for every combination, plus a total for each subset (ALL). None ticked: one overall row.",
    )
    outcomes = forms.MultipleChoiceField(
        choices=[(o, OUTCOME_LABELS[o]) for o in OUTCOMES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every outcome.",
    )
    cutoff_on = forms.DateField(label="Data cut-off date", widget=forms.DateInput(attrs={"type": "date"}))
    onset_window_days = forms.IntegerField(
        label="Onset window (days)",
        min_value=0,
        required=False,
        help_text="Optional: only events with onset at most this many days after the procedure count.",
    )
    ci_method = forms.ChoiceField(label="Proportion interval", choices=CIMethod.choices, initial=CIMethod.WILSON)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _with_ci(value, low, high) -> str:
    if value is None:
        return "-"
    return f"{_fmt(value)} ({_fmt(low)} to {_fmt(high)})"


@admin.register(IncidenceRun)
class IncidenceRunAdmin(RunDocumentsAdminMixin, admin.ModelAdmin):
    list_display = ["id", "status", "strata_display", "cutoff_on", "trigger", "requested_by", "created_at", "row_count"]
    list_filter = ["status", "trigger"]
    fields = [
        "status",
        "strata",
        "outcomes",
        "cutoff_on",
        "onset_window_days",
        "ci_method",
        "clinic_ids",
        "trigger",
        "requested_by",
        "created_at",
        "claimed_at",
        "finished_at",
        "heartbeat_at",
        "published_at",
        "estimated_rows",
        "attempts",
        "error",
        "row_count",
        "results_table",
    ]
    readonly_fields = fields

    @admin.display(description="strata")
    def strata_display(self, run: IncidenceRun) -> str:
        return " x ".join(run.strata) or "overall"

    def get_queryset(self, request):
        return selectors.runs_for_user(request.user)

    # Any clinic member may use the Reports page; the selectors limit what each one sees.
    def has_module_permission(self, request) -> bool:
        return selectors.may_use_reports(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return selectors.may_use_reports(request.user)

    def has_add_permission(self, request) -> bool:
        return selectors.may_use_reports(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # runs are started from the form and never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a finished run is a snapshot

    def get_urls(self):
        urls = [
            path(
                "<int:run_id>/csv/",
                self.admin_site.admin_view(self.csv_view),
                name="reports_incidencerun_csv",
            ),
        ]
        # The run's report page (tables and charts), its chart images, XLSX and PDF downloads.
        urls += self.document_urls()
        return urls + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = IncidenceRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                run = services.incidence_run_start(
                    actor=request.user,
                    cutoff_on=data["cutoff_on"],
                    strata=data["strata"],
                    outcomes=data["outcomes"] or None,
                    onset_window_days=data["onset_window_days"],
                    ci_method=data["ci_method"],
                    trigger=Trigger.ADMIN,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Incidence run #{run.pk} is queued; this page shows it when it is done.")
                return HttpResponseRedirect(reverse("admin:reports_incidencerun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "New incidence report",
            "opts": self.model._meta,
            "form": form,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/reports/incidencerun/add_form.html", context)

    def csv_view(self, request, run_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = selectors.run_for_user(request.user, run_id)
        if run.status != RunStatus.SUCCEEDED:
            raise Http404("This run has no results yet.")
        log = export_log_start(user=request.user, kind=ExportKind.RUN_CSV, filters={"run": run.pk}, run=run)
        records = list(selectors.results_of_run(run).values())
        out = io.StringIO()
        write_csv(out, strata=run.strata, records=records)
        export_log_finish(log=log, row_count=len(records))
        response = HttpResponse(out.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="incidence-run-{run.pk}.csv"'
        return response

    @admin.display(description="results")
    def results_table(self, run: IncidenceRun) -> str:
        if run.status != RunStatus.SUCCEEDED:
            return "No results yet." if run.status != RunStatus.FAILED else "The run failed; see the error."
        columns = [*run.strata, "outcome", "procedures", "cases", "proportion (95% CI)", "person-years"]
        columns += ["rate /100 PY (95% CI)", *(f"KM {label}" for label, _ in HORIZONS)]
        rows = (
            [
                *(r.stratum.get(s, "") for s in run.strata),
                r.outcome,
                r.procedures,
                r.cases,
                _with_ci(r.proportion, r.proportion_ci_low, r.proportion_ci_high),
                _fmt(r.person_years),
                _with_ci(r.rate_per_100py, r.rate_ci_low, r.rate_ci_high),
                *(
                    _with_ci(
                        getattr(r, f"km_cuminc_{label}"),
                        getattr(r, f"km_cuminc_{label}_ci_low"),
                        getattr(r, f"km_cuminc_{label}_ci_high"),
                    )
                    for label, _ in HORIZONS
                ),
            ]
            for r in selectors.results_of_run(run)[:RESULTS_SHOWN]
        )
        context = {
            "report_url": reverse("admin:reports_incidencerun_report", args=[run.pk]),
            "xlsx_url": reverse("admin:reports_incidencerun_xlsx", args=[run.pk]),
            "pdf_url": reverse("admin:reports_incidencerun_pdf", args=[run.pk]),
            "csv_url": reverse("admin:reports_incidencerun_csv", args=[run.pk]),
            "csv_columns": len(header(run.strata)),
            "row_count": run.row_count,
            "columns": columns,
            "rows": rows,
        }
        # A rendered template is safe HTML: every value in it was escaped.
        return render_to_string("admin/reports/incidencerun/results_table.html", context)


# The export log and the overdue follow-up summary, registered here where the admin autodiscovery looks.
admin.site.register(ExportLog, ExportLogAdmin)
