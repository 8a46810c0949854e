"""The Reports page: start an incidence run from a form, read finished runs (never edit them);
the registry's outcome definitions (risk windows), versioned, edited by registry administrators."""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Exists, IntegerField, OuterRef, Value, When
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.models import ConcurrentUpdate
from registry.selectors import is_registry_admin
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
    Unit,
    WindowsMode,
)
from reports.documents import formatting as fmt
from reports.documents.views import RunDocumentsAdminMixin
from reports.exports.admin import ExportLogAdmin
from reports.exports.incidence_csv import header, write_csv
from reports.exports.services import export_log_finish, export_log_start
from reports.models import ExportLog, IncidenceRun, OutcomeDefinition

# The change page shows the first rows; the report page has them all, by outcome, filtered and paginated.
RESULTS_SHOWN = 50


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
    windows_mode = forms.ChoiceField(
        label="Risk windows",
        choices=WindowsMode.choices,
        initial=WindowsMode.REGISTRY,
        required=False,
        help_text="By default the registry's outcome definitions, as they stand when the run starts (see Outcome "
        "definitions); the run keeps a copy of the ones it used and shows them. Open: every outcome counted from "
        "day 0 to the end of follow-up.",
    )
    unit = forms.ChoiceField(
        label="Unit",
        choices=Unit.choices,
        initial=Unit.PROCEDURE,
        required=False,
        help_text="Procedure: each procedure is followed from its own date. Patient: each patient once, from the "
        "first procedure on or before the cut-off.",
    )
    onset_window_days = forms.IntegerField(
        label="Onset window (days)",
        min_value=0,
        required=False,
        help_text="Optional: every risk window ends on this day after time zero (each start day kept).",
    )
    ci_method = forms.ChoiceField(label="Proportion interval", choices=CIMethod.choices, initial=CIMethod.WILSON)

    # Left out of a request (a script, an older form): the defaults the form shows.
    def clean_windows_mode(self) -> str:
        return self.cleaned_data.get("windows_mode") or WindowsMode.REGISTRY

    def clean_unit(self) -> str:
        return self.cleaned_data.get("unit") or Unit.PROCEDURE


def _window(start, end) -> str:
    return f"day {start} to {'open' if end is None else f'day {end}'}"


def definitions_table(definitions: list[dict]) -> str:
    """Return the frozen outcome definitions of a run as an HTML table (every value escaped)."""
    if not definitions:
        return "None stored: the run predates outcome definitions, every window open."
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                d["code"],
                d["label"],
                d["qualifies"],
                _window(d["window_start_day"], d["window_end_day"]),
                "-" if d.get("version") is None else d["version"],
            )
            for d in definitions
        ),
    )
    return format_html(
        "<table><thead><tr><th>outcome</th><th>label</th><th>qualifying events</th><th>risk window</th>"
        "<th>version</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


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
        "windows_mode",
        "unit",
        "outcome_definitions_table",
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

    @admin.display(description="outcome definitions used")
    def outcome_definitions_table(self, run: IncidenceRun) -> str:
        return definitions_table(run.outcome_definitions)

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
                    windows_mode=data["windows_mode"],
                    unit=data["unit"],
                    trigger=Trigger.ADMIN,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                windows = dict(WindowsMode.choices)[run.windows_mode]
                messages.success(
                    request,
                    f"Incidence run #{run.pk} is queued ({windows.lower()}; unit: {run.unit}); "
                    "this page shows it when it is done.",
                )
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
        columns += [f"AJ {label}" for label, _ in HORIZONS]
        rows = (
            [
                *(r.stratum.get(s, "") for s in run.strata),
                r.outcome,
                r.procedures,
                r.cases,
                fmt.percent_interval(r.proportion, r.proportion_ci_low, r.proportion_ci_high),
                fmt.person_years(r.person_years),
                fmt.with_interval(r.rate_per_100py, r.rate_ci_low, r.rate_ci_high),
                *(
                    fmt.percent_interval(
                        getattr(r, f"km_cuminc_{label}"),
                        getattr(r, f"km_cuminc_{label}_ci_low"),
                        getattr(r, f"km_cuminc_{label}_ci_high"),
                    )
                    for label, _ in HORIZONS
                ),
                *(fmt.percent(getattr(r, f"aj_cuminc_{label}")) for label, _ in HORIZONS),
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
            "rows_shown": min(RESULTS_SHOWN, run.row_count),
            "columns": columns,
            "rows": rows,
        }
        # A rendered template is safe HTML: every value in it was escaped.
        return render_to_string("admin/reports/incidencerun/results_table.html", context)


class VersionFilter(admin.SimpleListFilter):
    """The current definitions by default; every stored version (the history) on request."""

    title = "versions"
    parameter_name = "versions"

    def lookups(self, request, model_admin):
        return [("current", "Current"), ("all", "All versions (history)")]

    def value(self):
        return "all" if super().value() == "all" else "current"

    def choices(self, changelist):
        choices = super().choices(changelist)
        next(choices)  # Django's "All" drops the parameter, which here means "Current": "all" replaces it
        yield from choices

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        return queryset.filter(is_current=True)


def _current_flag():
    newer = OutcomeDefinition.objects.filter(code=OuterRef("code"), version__gt=OuterRef("version"))
    return ~Exists(newer)


class OutcomeDefinitionForm(forms.ModelForm):
    """The next version of a definition; carries the version the editor started from."""

    based_on_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = OutcomeDefinition
        fields = ["code", "label", "window_start_day", "window_end_day", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["based_on_version"].initial = self.instance.version
        else:
            stored = set(OutcomeDefinition.objects.values_list("code", flat=True))
            self.fields["code"].choices = [("", "---------")] + [
                (code, OUTCOME_LABELS[code]) for code in OUTCOMES if code not in stored
            ]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            current = OutcomeDefinition.objects.filter(code=self.instance.code).order_by("-version").first()
            started = cleaned.get("based_on_version")
            if started is None:
                started = self.instance.version
            if current is not None and current.version != started:
                raise ValidationError(
                    f"Version {current.version} of this definition was stored after the one you opened "
                    f"(version {started}); open the current one to edit it.",
                    code="stale",
                )
        return cleaned


@admin.register(OutcomeDefinition)
class OutcomeDefinitionAdmin(admin.ModelAdmin):
    """Registry administrators edit outcome definitions; each save stores the next version, never an update."""

    form = OutcomeDefinitionForm
    list_display = ["code", "label", "window", "version", "is_current_display", "created_at", "created_by"]
    list_display_links = ["code", "label"]
    list_filter = [VersionFilter, "code"]
    list_select_related = ["created_by"]
    search_fields = ["code", "label", "note"]
    fields = [
        "code",
        "label",
        "qualifies",
        "window_start_day",
        "window_end_day",
        "note",
        "based_on_version",
        "version",
        "created_at",
        "created_by",
    ]
    readonly_fields = ["qualifies", "version", "created_at", "created_by"]

    def get_queryset(self, request):
        order = Case(*(When(code=code, then=Value(i)) for i, code in enumerate(OUTCOMES)), output_field=IntegerField())
        rows = self.model._default_manager.select_related("created_by").annotate(
            is_current=_current_flag(), outcome_order=order
        )
        return rows.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        return ["outcome_order", "-version"]  # the canonical outcome order (reports.choices.OUTCOMES)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [
                f
                for f in self.fields
                if f not in ("qualifies", "based_on_version", "version", "created_at", "created_by")
            ]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "code"] if obj is not None else []

    @admin.display(description="risk window")
    def window(self, obj: OutcomeDefinition) -> str:
        return _window(obj.window_start_day, obj.window_end_day)

    @admin.display(description="current", boolean=True)
    def is_current_display(self, obj: OutcomeDefinition) -> bool:
        return bool(getattr(obj, "is_current", False))

    # Registry administrators only (a superuser counts as one); nobody deletes a version.
    def has_module_permission(self, request) -> bool:
        return is_registry_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_registry_admin(request.user)

    def has_add_permission(self, request) -> bool:
        # Every code is stored from the start (migration 0006): adding is for a code left without any.
        if not is_registry_admin(request.user):
            return False
        return OutcomeDefinition.objects.values("code").distinct().count() < len(OUTCOMES)

    def has_change_permission(self, request, obj=None) -> bool:
        if not is_registry_admin(request.user):
            return False
        # Only the current version is edited (into the next); older ones are history, shown read-only.
        return obj is None or not OutcomeDefinition.objects.filter(code=obj.code, version__gt=obj.version).exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConcurrentUpdate as exc:
            # Another version was stored between the form's check and the save: nothing was written.
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:reports_outcomedefinition_changelist"))

    def save_model(self, request, obj, form, change):
        """Store the next version through the service (never an UPDATE); ``obj`` becomes that new row."""
        data = form.cleaned_data
        try:
            stored = services.outcome_definition_save(
                actor=request.user,
                code=obj.code,
                label=data["label"],
                window_start_day=data["window_start_day"],
                window_end_day=data["window_end_day"],
                note=data.get("note", ""),
                based_on_version=(data.get("based_on_version") or obj.version) if change else None,
            )
        except ValidationError as exc:  # only a race past the form's checks gets here
            raise ConcurrentUpdate(" ".join(exc.messages)) from exc
        # The change message, the log entry and the redirect name the version just stored.
        for field in OutcomeDefinition._meta.concrete_fields:
            setattr(obj, field.attname, getattr(stored, field.attname))
        obj._state.adding = False


# The export log and the overdue follow-up summary, registered here where the admin autodiscovery looks.
admin.site.register(ExportLog, ExportLogAdmin)
