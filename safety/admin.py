"""The safety admin: reporting rules (registry administrators), the "Reports due" page, submissions,
withdrawals, the CIOMS I form of a case and the safety figures (page and PDF).

Rows come from safety.selectors (clinic staff: their clinics; administrators and safety reviewers:
every clinic); a row a user may not see answers 404. Writes go through safety.services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.dates import today
from registry import selectors as registry_selectors
from safety import cioms, pdf, selectors, services
from safety.choices import DueReportStatus
from safety.forms import ReportingRuleForm, SubmissionForm, WithdrawForm
from safety.models import DueReport, ReportingRule

PAGE_TEMPLATE = "admin/safety/duereport/reports_due.html"
FORM_TEMPLATE = "admin/safety/duereport/due_report_form.html"
FIGURES_TEMPLATE = "admin/safety/duereport/figures.html"
ROWS_SHOWN = 500
STATUS_FILTERS = {
    "open": [DueReportStatus.OPEN],
    "submitted": [DueReportStatus.SUBMITTED],
    "withdrawn": [DueReportStatus.WITHDRAWN],
    "all": list(DueReportStatus),
}


@admin.register(ReportingRule)
class ReportingRuleAdmin(admin.ModelAdmin):
    """Rules are data: registry administrators add and change them (never delete: untick "active")."""

    form = ReportingRuleForm
    list_display = ["code", "name", "clock_days", "recipient", "form", "active"]
    list_filter = ["active", "form"]
    search_fields = ["code", "name", "recipient"]

    def get_queryset(self, request):
        return selectors.rules_for_user(request.user)

    def has_module_permission(self, request) -> bool:
        return selectors.may_read_rules(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return selectors.may_read_rules(request.user)

    def has_add_permission(self, request) -> bool:
        return selectors.may_manage_rules(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return selectors.may_manage_rules(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        services.reporting_rule_save(actor=request.user, rule=obj)


def _pdf(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(DueReport)
class DueReportAdmin(admin.ModelAdmin):
    """The changelist is the "Reports due" page; a due report's own page is its "Record submission" form."""

    def get_queryset(self, request):
        return selectors.due_reports_for_user(request.user)

    def has_module_permission(self, request) -> bool:
        return selectors.sees_any_clinic(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return selectors.sees_any_clinic(request.user)

    def has_add_permission(self, request) -> bool:
        return False  # due reports come from the rules

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # closed by a submission or a withdrawal, below

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/submit/", view(self.submit_view), name="safety_duereport_submit"),
            path("<int:pk>/withdraw/", view(self.withdraw_view), name="safety_duereport_withdraw"),
            path("event/<int:event_id>/cioms.pdf", view(self.cioms_view), name="safety_duereport_cioms"),
            path("figures/", view(self.figures_view), name="safety_duereport_figures"),
            path("figures/safety-report.pdf", view(self.figures_pdf_view), name="safety_duereport_figures_pdf"),
            *super().get_urls(),
        ]

    def _require_viewer(self, request) -> None:
        if not selectors.sees_any_clinic(request.user):
            raise PermissionDenied

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        due = selectors.due_report_for_user(request.user, object_id)
        return HttpResponseRedirect(reverse("admin:safety_duereport_submit", args=[due.pk]))

    def changelist_view(self, request, extra_context=None):
        self._require_viewer(request)
        clinics = list(registry_selectors.clinics_for_user(request.user).order_by("code"))
        status = request.GET.get("status", "open")
        status = status if status in STATUS_FILTERS else "open"
        rows = self.get_queryset(request).filter(status__in=STATUS_FILTERS[status])
        clinic_id = selectors.parse_id(request.GET.get("clinic", ""))
        if clinic_id is not None:
            rows = rows.filter(event__procedure__clinic_id=clinic_id)
        on = today()
        rows = [
            {
                "due": due,
                "overdue": selectors.is_overdue(due, on=on),
                "days_left": (due.due_on - on).days,
                "days_late": (on - due.due_on).days,
                "may_submit": due.status == DueReportStatus.OPEN and selectors.may_record_submission(request.user, due),
                "may_withdraw": due.status == DueReportStatus.OPEN and selectors.may_withdraw(request.user),
            }
            for due in rows[:ROWS_SHOWN]
        ]
        context = self._context(
            request,
            "Reports due",
            rows=rows,
            clinics=clinics,
            clinic_id=clinic_id,
            status=status,
            statuses=list(STATUS_FILTERS),
            registry_wide=registry_selectors.clinic_scope(request.user) is registry_selectors.ALL,
            **(extra_context or {}),
        )
        return TemplateResponse(request, PAGE_TEMPLATE, context)

    def submit_view(self, request, pk: int):
        """Show a due report and take its submission (date, reference number; who is the user)."""
        due = selectors.due_report_for_user(request.user, pk)
        allowed = due.status == DueReportStatus.OPEN and selectors.may_record_submission(request.user, due)
        form = SubmissionForm(request.POST or None, initial={"submitted_on": today()})
        if request.method == "POST":
            if not allowed:
                raise PermissionDenied
            if form.is_valid():
                try:
                    submission = services.submission_record(actor=request.user, due_report=due, **form.cleaned_data)
                except ValidationError as exc:
                    _form_errors(form, exc)
                else:
                    late = f" It was late (due {due.due_on:%Y-%m-%d}); that stays on record." if submission.late else ""
                    messages.success(request, f"Submission {submission.reference_number} recorded.{late}")
                    return HttpResponseRedirect(reverse("admin:safety_duereport_changelist"))
        context = self._context(
            request,
            f"Record submission: {due.rule.name}, event {due.event.external_id}",
            due=due,
            form=form if allowed else None,
            overdue=selectors.is_overdue(due),
            action="submit",
        )
        return TemplateResponse(request, FORM_TEMPLATE, context)

    def withdraw_view(self, request, pk: int):
        """Withdraw an open due report with a reason (registry administrators and safety reviewers)."""
        due = selectors.due_report_for_user(request.user, pk)
        if not selectors.may_withdraw(request.user) or due.status != DueReportStatus.OPEN:
            raise PermissionDenied
        form = WithdrawForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.due_report_withdraw(actor=request.user, due_report=due, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                _form_errors(form, exc, field="reason")
            else:
                messages.success(request, f"The {due.rule.name} report of {due.event.external_id} is withdrawn.")
                return HttpResponseRedirect(reverse("admin:safety_duereport_changelist"))
        context = self._context(
            request,
            f"Withdraw: {due.rule.name}, event {due.event.external_id}",
            due=due,
            form=form,
            overdue=selectors.is_overdue(due),
            action="withdraw",
        )
        return TemplateResponse(request, FORM_TEMPLATE, context)

    def cioms_view(self, request, event_id: int):
        """Return the CIOMS I form (PDF) of an event the user may see."""
        event = selectors.event_for_user(request.user, event_id)
        data = pdf.cioms_pdf(event.external_id, cioms.cioms_boxes(event))
        return _pdf(data, f"CIOMS-I-{event.external_id}.pdf")

    def _figures(self, request):
        self._require_viewer(request)
        clinic_id = selectors.parse_id(request.GET.get("clinic", ""))
        rows = selectors.safety_figures(request.user, clinic_id=clinic_id)
        return rows, clinic_id

    def figures_view(self, request):
        """Show the safety figures per clinic the user sees, and their total."""
        rows, clinic_id = self._figures(request)
        clinics = [row.clinic for row in rows if row.clinic is not None]
        context = self._context(
            request,
            "Safety figures",
            rows=rows,
            clinic_id=clinic_id,
            clinics=list(registry_selectors.clinics_for_user(request.user).order_by("code")),
            pdf_query=f"?clinic={clinic_id}" if clinic_id is not None else "",
            shown=clinics,
        )
        return TemplateResponse(request, FIGURES_TEMPLATE, context)

    def figures_pdf_view(self, request):
        """Return the safety report (PDF) of the figures the user sees."""
        rows, _clinic_id = self._figures(request)
        names = ", ".join(row.clinic.code for row in rows if row.clinic is not None) or "no clinic"
        return _pdf(pdf.figures_pdf(rows, scope=f"Clinics: {names}"), "safety-report.pdf")


def _form_errors(form, exc: ValidationError, *, field: str | None = None) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else field, errors)
    else:
        form.add_error(field, exc.messages)
