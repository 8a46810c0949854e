"""Clinic staff's screens: issue and revoke patient links (the handout shows the link once), and the
queue of patient reports (urgent and unreviewed first) with confirm and reject.

Rows are limited to the user's clinics (patients.selectors); another clinic's report answers 404, and the
services refuse a write by anyone but the clinic's own staff.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import translation

from core.dates import today
from patients import selectors, services
from patients.choices import SITE_NAMES, RedFlag, ReportKind, ReportStatus
from patients.forms import ConfirmReportForm, IssueLinkForm, RejectReportForm, RevokeLinkForm
from patients.handout import patient_url, qr_svg
from patients.models import PatientLink, PatientReport, SubmissionLog
from registry.selectors import ALL, clinic_scope, procedures_for_user


def _posted(request):
    return request.POST if request.method == "POST" else None  # an empty POST is still a submission


def _sees_any_clinic(user) -> bool:
    scope = clinic_scope(user)
    return scope is ALL or bool(scope)


class _ScopedAdmin(admin.ModelAdmin):
    def has_module_permission(self, request) -> bool:
        return _sees_any_clinic(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return _sees_any_clinic(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # written only through the services' own screens below

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _form_page(self, request, template: str, context: dict):
        return TemplateResponse(
            request, template, {**self.admin_site.each_context(request), "opts": self.model._meta, **context}
        )

    def _errors_to_form(self, form, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)


@admin.register(PatientLink)
class PatientLinkAdmin(_ScopedAdmin):
    list_display = ("__str__", "procedure_date", "language", "issued_by", "issued_at", "expires_on", "revoked_at")
    list_filter = ("language",)
    search_fields = ("procedure__external_id",)
    readonly_fields = ("procedure", "language", "issued_by", "issued_at", "expires_on", "revoked_at", "revoked_by")
    fields = (*readonly_fields, "revoke_reason")
    change_form_template = "admin/patients/patientlink/change_form.html"

    @admin.display(description="procedure date")
    def procedure_date(self, obj):
        return obj.procedure.performed_on

    def get_queryset(self, request):
        return selectors.links_for_user(request.user)

    def has_add_permission(self, request) -> bool:
        scope = clinic_scope(request.user)
        return scope is not ALL and bool(scope)  # the clinic's own staff issue its links

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:link_id>/revoke/", view(self.revoke_view), name="patients_patientlink_revoke"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """Issue a link for a procedure; the answer is the handout, the only time the link is shown."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        procedures = procedures_for_user(request.user).filter(retracted_at__isnull=True)
        kwargs = {
            "procedures": procedures,
            "field": PatientLink._meta.get_field("procedure"),
            "admin_site": self.admin_site,
        }
        form = IssueLinkForm(_posted(request), **kwargs)
        if request.method == "POST" and form.is_valid():
            try:
                link, token = services.patient_link_issue(actor=request.user, procedure=form.cleaned_data["procedure"])
            except ValidationError as exc:
                self._errors_to_form(form, exc)
            else:
                return self.handout(request, link, token)
        return self._form_page(
            request,
            "admin/patients/patientlink/issue_form.html",
            {"form": form, "media": self.media + form.media, "title": "Issue a patient link"},
        )

    def handout(self, request, link: PatientLink, token: str):
        url = patient_url(token)
        procedure = link.procedure
        with translation.override(link.language):
            response = TemplateResponse(
                request,
                "admin/patients/patientlink/handout.html",
                {
                    "link": link,
                    "url": url,
                    "qr": qr_svg(url),
                    "procedure": procedure,
                    "site_name": SITE_NAMES.get(procedure.site, procedure.site),
                    "clinic": procedure.clinic,
                    "lang": link.language,
                    "signs": [label for _code, label in RedFlag.choices],
                },
            )
            response.render()
        response["Cache-Control"] = "no-store"  # the token is in it: no cache keeps a copy
        return response

    def revoke_view(self, request, link_id: int):
        link = get_object_or_404(self.get_queryset(request), pk=link_id)
        form = RevokeLinkForm(_posted(request))
        if request.method == "POST" and form.is_valid():
            try:
                services.patient_link_revoke(actor=request.user, link=link, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                self._errors_to_form(form, exc)
            else:
                messages.success(request, "The link is revoked: it now answers 'not valid'.")
                return HttpResponseRedirect(reverse("admin:patients_patientlink_change", args=[link.pk]))
        return self._form_page(
            request,
            "admin/patients/form.html",
            {"form": form, "title": f"Revoke {link}", "object": link, "submit": "Revoke the link"},
        )


class QueueFilter(admin.SimpleListFilter):
    """Default: unreviewed reports, urgent first; or only urgent ones, or every report."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("urgent", "Urgent, unreviewed"), ("all", "All reports")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Unreviewed",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        queryset = queryset.filter(status=ReportStatus.UNCONFIRMED)
        return queryset.filter(urgent=True) if self.value() == "urgent" else queryset


class SubmissionInline(admin.TabularInline):
    """Every time the patient sent or changed this report: when, how, and the keyed hash of the address."""

    model = SubmissionLog
    fields = readonly_fields = ("at", "action", "link", "address_hash")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return _sees_any_clinic(request.user)


@admin.register(PatientReport)
class PatientReportAdmin(_ScopedAdmin):
    inlines = (SubmissionInline,)
    list_display = ("__str__", "clinic", "urgent", "flags", "status", "submitted_at")
    list_filter = (QueueFilter, "status", "urgent", "kind")
    search_fields = ("procedure__external_id",)
    change_form_template = "admin/patients/patientreport/change_form.html"
    readonly_fields = (
        "procedure",
        "kind",
        "day",
        "entry_on",
        *services.DIARY_FIELDS,
        "what",
        "since_on",
        "severity",
        "flags",
        "urgent",
        "submitted_at",
        "status",
        "reviewed_by",
        "reviewed_at",
        "reject_reason",
        "adverse_event",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return selectors.reports_for_user(request.user)

    def has_add_permission(self, request) -> bool:
        return False  # patients send reports through their link

    @admin.display(description="clinic")
    def clinic(self, obj):
        return obj.procedure.clinic.code

    @admin.display(description="red flags")
    def flags(self, obj):
        return ", ".join(str(RedFlag(code).label) for code in obj.red_flags if code in RedFlag.values) or "-"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:report_id>/confirm/", view(self.confirm_view), name="patients_patientreport_confirm"),
            path("<int:report_id>/reject/", view(self.reject_view), name="patients_patientreport_reject"),
            *super().get_urls(),
        ]

    def _report(self, request, report_id: int) -> PatientReport:
        report = self.get_queryset(request).filter(pk=report_id).first()
        if report is None:
            raise Http404("No such patient report.")
        return report

    def _done(self, request, report, message):
        messages.success(request, message)
        return HttpResponseRedirect(reverse("admin:patients_patientreport_change", args=[report.pk]))

    def confirm_view(self, request, report_id: int):
        report = self._report(request, report_id)
        initial = {"onset_on": report.since_on or report.entry_on, "term": _suggested_term(report)}
        form = ConfirmReportForm(_posted(request), initial=initial, events=selectors.events_to_link(report))
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            event = data.pop("event")
            try:
                services.patient_report_confirm(
                    actor=request.user, report=report, event=event, **({} if event else data)
                )
            except ValidationError as exc:
                self._errors_to_form(form, exc)
            else:
                return self._done(request, report, "Confirmed: the adverse event is recorded, reported by the patient.")
        return self._form_page(
            request,
            "admin/patients/form.html",
            {
                "form": form,
                "title": f"Confirm {report}",
                "object": report,
                "report": report,
                "submit": "Confirm as an adverse event",
                "today": today(),
            },
        )

    def reject_view(self, request, report_id: int):
        report = self._report(request, report_id)
        form = RejectReportForm(_posted(request))
        if request.method == "POST" and form.is_valid():
            try:
                services.patient_report_reject(actor=request.user, report=report, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                self._errors_to_form(form, exc)
            else:
                return self._done(request, report, "Rejected, with the reason recorded.")
        return self._form_page(
            request,
            "admin/patients/form.html",
            {
                "form": form,
                "title": f"Reject {report}",
                "object": report,
                "report": report,
                "submit": "Reject the report",
            },
        )


def _suggested_term(report: PatientReport) -> str:
    if report.kind == ReportKind.PROBLEM:
        return report.what[:200]
    with translation.override("en"):
        return "; ".join(str(RedFlag(code).label) for code in report.red_flags if code in RedFlag.values)[:200]
