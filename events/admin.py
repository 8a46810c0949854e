"""Adverse-event data entry: fieldsets, filters, search, and retraction instead of deletion."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path

from events import services
from events.admin_case import CaseLifecycleAdminMixin
from events.admin_case_lists import FollowUpReportAdmin, MedicalReviewAdmin
from events.admin_inlines import MEDDRA_TERMS_URL_NAME, AdverseEventForm, MeddraCodingAdminMixin
from events.admin_reference import ReferenceSafetyInformationAdmin
from events.models import AdverseEvent
from events.selectors import adverse_events_for_user
from meddra import selectors as meddra_selectors
from registry.admin import procedure_frozen
from registry.admin_base import RetractionAdminMixin, RetractionForm, ScopedAdmin, clinic_filter


@admin.register(AdverseEvent)
class AdverseEventAdmin(CaseLifecycleAdminMixin, MeddraCodingAdminMixin, RetractionAdminMixin, ScopedAdmin):
    retract_service = staticmethod(services.adverse_event_retract)
    restore_service = staticmethod(services.adverse_event_restore)
    selector = staticmethod(adverse_events_for_user)
    save_service = staticmethod(services.adverse_event_save)
    check_service = staticmethod(services.adverse_event_check)
    service_kwarg = "event"
    # The retractable change form plus the case's timeline and its follow-up and review buttons.
    change_form_template = "admin/events/adverseevent/case_change_form.html"

    class Media:
        css = {"all": ["events/case_timeline.css"]}

    def frozen(self, obj) -> bool:
        # An event under a retracted procedure or patient is frozen with it (read-only, no retract button).
        return super().frozen(obj) or (obj is not None and procedure_frozen(obj.procedure))

    form = AdverseEventForm
    list_display = (
        "external_id",
        "term",
        "category",
        "grade",
        "serious",
        "onset_on",
        "aware_on",
        "outcome",
        "case_status",
        "site",
        "cell_type",
        "clinic",
        "is_active",
    )
    list_filter = (
        clinic_filter("procedure__clinic_id"),
        ("procedure__site", admin.ChoicesFieldListFilter),
        ("procedure__cell_type", admin.ChoicesFieldListFilter),
        "category",
        "grade",
        "serious",
        "outcome",
        "case_status",
        "onset_on",  # RetractionAdminMixin adds the retracted filter (active rows by default)
    )
    search_fields = (
        "external_id",
        "term",
        "meddra_code",
        "meddra_llt_name",
        "meddra_pt_name",
        "procedure__external_id",
        "procedure__patient__registry_id",
        "procedure__product_lot",
    )
    autocomplete_fields = ("procedure",)
    date_hierarchy = "onset_on"
    readonly_fields = ("meddra_coding", "recorded_at", "retracted_at", "retracted_by", "retraction_reason")
    actions = ("retract_selected",)
    fieldsets = (
        (
            "Description",
            {
                "fields": (
                    "external_id",
                    "procedure",
                    "category",
                    "term",
                    "meddra_code",
                    "meddra_coding",
                    ("onset_on", "onset_estimated"),
                    "grade",
                    "recorded_at",
                )
            },
        ),
        (
            "Case",
            {
                "fields": (
                    ("aware_on", "case_status"),
                    ("reporter_type", "communicable_disease"),
                    "narrative",
                ),
                "description": "Awareness starts the reporting clocks; follow-ups are added from the button above.",
            },
        ),
        (
            "Seriousness",
            {
                "fields": (
                    "serious",
                    "serious_death",
                    "serious_life_threatening",
                    "serious_hospitalisation",
                    "serious_disability",
                    "serious_congenital_anomaly",
                    "serious_medically_important",
                ),
                "description": "Serious exactly when at least one ICH E2B criterion holds.",
            },
        ),
        ("Causality (WHO-UMC)", {"fields": ("causality_procedure", "causality_product", "expectedness")}),
        ("Outcome", {"fields": ("outcome", "resolved_on", "action_taken", "reporter")}),
        ("Retraction", {"fields": ("retracted_at", "retracted_by", "retraction_reason"), "classes": ("collapse",)}),
    )

    MEDDRA_TERMS_PAGE = 20

    def get_urls(self):
        terms = path("meddra-terms/", self.admin_site.admin_view(self.meddra_terms_view), name=MEDDRA_TERMS_URL_NAME)
        return [terms, *super().get_urls()]

    def meddra_terms_view(self, request):
        """Return the current LLTs of the newest MedDRA version whose name holds ?term=, as select2 reads them.

        The admin site's own gate (a staff session verified by its second factor) comes first; then anyone who
        may enter or read adverse events may search. Dictionary terms are not clinical data: no clinic scope.
        """
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        if not (self.has_add_permission(request) or self.has_view_or_change_permission(request)):
            raise PermissionDenied
        version = meddra_selectors.latest_version()
        if version is None:
            return JsonResponse({"results": [], "pagination": {"more": False}})
        term = request.GET.get("term", "")[:100]
        page = request.GET.get("page", "1")
        page = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 6 else 1
        size = self.MEDDRA_TERMS_PAGE
        start = (max(page, 1) - 1) * size
        found = list(meddra_selectors.current_llts(version, term).values_list("code", "name")[start : start + size + 1])
        return JsonResponse(
            {
                "results": [{"id": code, "text": f"{name} ({code})"} for code, name in found[:size]],
                "pagination": {"more": len(found) > size},
            }
        )

    @admin.display(description="site", ordering="procedure__site")
    def site(self, obj):
        return obj.procedure.get_site_display()

    @admin.display(description="cell type", ordering="procedure__cell_type")
    def cell_type(self, obj):
        return obj.procedure.get_cell_type_display()

    @admin.display(description="clinic", ordering="procedure__clinic__code")
    def clinic(self, obj):
        return obj.procedure.clinic.code

    @admin.display(description="active", boolean=True)
    def is_active(self, obj):
        return obj.retracted_at is None

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.retracted_at is not None:
            # A retracted event is frozen: every field is read-only.
            return [f.name for f in self.model._meta.fields if f.name != "id"]
        return super().get_readonly_fields(request, obj)

    @admin.action(description="Retract selected adverse events (with a reason)", permissions=["change"])
    def retract_selected(self, request, queryset):
        queryset = queryset.filter(retracted_at__isnull=True)
        form = RetractionForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for event in queryset:
                try:
                    services.adverse_event_retract(actor=request.user, event=event, reason=form.cleaned_data["reason"])
                    done += 1
                except ValidationError as exc:
                    self.message_user(request, f"{event}: {'; '.join(exc.messages)}", messages.ERROR)
            self.message_user(request, f"Retracted {done} adverse event(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Retract adverse events",
            "events": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/events/retract_confirmation.html", context)


# Registered by their modules (imported here, as Django's autodiscovery imports only events.admin).
CASE_ADMINS = (FollowUpReportAdmin, MedicalReviewAdmin, ReferenceSafetyInformationAdmin)
