"""Data entry for clinics, patients, procedures and follow-up visits."""

from __future__ import annotations

from axes import admin as axes_admin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from pghistory.admin import core as pghistory_admin

from registry import selectors, services
from registry.admin_base import OverdueFilter, ScopedAdmin, clinic_filter
from registry.models import Clinic, FollowUpVisit, Membership, Patient, Procedure


@admin.register(Clinic)
class ClinicAdmin(ScopedAdmin):
    selector = staticmethod(selectors.clinics_for_user)
    save_service = staticmethod(services.clinic_save)
    service_kwarg = "clinic"
    list_display = ("code", "name", "country", "city", "gmp_certified", "accreditation_expires_on")
    list_filter = ("country", "gmp_certified")
    search_fields = ("code", "name", "city")


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    selector = staticmethod(selectors.memberships_for_user)
    list_display = ("user", "role", "clinic", "created_at")
    list_filter = ("role", clinic_filter("clinic_id"))
    search_fields = ("user__username", "clinic__code")
    autocomplete_fields = ("clinic",)

    def save_model(self, request, obj, form, change):
        if change:
            obj.full_clean()
            obj.save()
        else:
            services.membership_create(user=obj.user, role=obj.role, clinic=obj.clinic, actor=request.user)


class ProcedureInline(admin.StackedInline):
    model = Procedure
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        ("performed_on", "site", "laterality", "target"),
        ("cell_source", "cell_type", "processing"),
        ("cell_dose_millions", "volume_ml", "carrier", "guidance"),
        ("product_lot", "operator", "indication"),
    )


@admin.register(Patient)
class PatientAdmin(ScopedAdmin):
    selector = staticmethod(selectors.patients_for_user)
    save_service = staticmethod(services.patient_save)
    service_kwarg = "patient"
    list_display = ("registry_id", "clinic", "sex", "birth_year", "enrolled_on", "withdrawn_on", "death_date")
    list_filter = (clinic_filter("clinic_id"), "sex", "enrolled_on")
    search_fields = ("registry_id",)
    readonly_fields = ("registry_id", "created_at", "updated_at")
    autocomplete_fields = ("clinic",)
    fieldsets = (
        (None, {"fields": ("registry_id", "clinic", "sex", "birth_year")}),
        ("Registry participation", {"fields": ("enrolled_on", "consent_on", "withdrawn_on", "death_date")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (ProcedureInline,)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        clinics = list(selectors.clinics_for_user(request.user).values_list("pk", flat=True)[:2])
        if len(clinics) == 1:  # a clinician of one clinic: preselect it
            initial.setdefault("clinic", clinics[0])
        return initial


class FollowUpVisitInline(admin.TabularInline):
    model = FollowUpVisit
    extra = 0
    max_num = 0  # the schedule is generated with the procedure; visits are recorded, not added
    can_delete = False
    fields = ("visit", "due_on", "window_start", "window_end", "completed_on", "contact_method", "status")
    readonly_fields = ("visit", "due_on", "window_start", "window_end", "status")

    def has_add_permission(self, request, obj=None):
        # max_num only hides the empty rows: without this a crafted POST of extra rows would still be saved.
        return False

    @admin.display(description="status")
    def status(self, obj):
        if obj.completed_on:
            return "completed"
        if obj.is_overdue:
            return format_html('<strong style="color:#ba2121">{}</strong>', "OVERDUE")
        return "open"


class ProcedureOverdueFilter(OverdueFilter):
    visit_id_field = "procedure_id"


@admin.register(Procedure)
class ProcedureAdmin(ScopedAdmin):
    selector = staticmethod(selectors.procedures_for_user)
    save_service = staticmethod(services.procedure_save)
    service_kwarg = "procedure"
    list_display = (
        "external_id",
        "patient",
        "clinic",
        "performed_on",
        "site",
        "laterality",
        "cell_source",
        "cell_type",
        "product_lot",
    )
    list_filter = (
        clinic_filter("clinic_id"),
        "site",
        "cell_type",
        "cell_source",
        "guidance",
        ProcedureOverdueFilter,
        "performed_on",
    )
    search_fields = ("external_id", "patient__registry_id", "product_lot")
    autocomplete_fields = ("patient",)
    readonly_fields = ("clinic", "created_at", "updated_at")
    date_hierarchy = "performed_on"
    fieldsets = (
        (None, {"fields": ("external_id", "patient", "clinic", "performed_on")}),
        ("Injection", {"fields": (("site", "laterality", "target"), "indication", "guidance", "operator")}),
        (
            "Cell product",
            {
                "fields": (
                    ("cell_source", "cell_type", "processing"),
                    ("cell_dose_millions", "volume_ml"),
                    "carrier",
                    "product_lot",
                )
            },
        ),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (FollowUpVisitInline,)  # intake/admin.py adds the adverse events of events/


@admin.register(FollowUpVisit)
class FollowUpVisitAdmin(ScopedAdmin):
    selector = staticmethod(selectors.visits_for_user)
    save_service = staticmethod(services.visit_save)
    service_kwarg = "visit"
    list_display = ("procedure", "visit", "due_on", "window_end", "completed_on", "overdue")
    list_filter = (clinic_filter("procedure__clinic_id"), OverdueFilter, "visit")
    search_fields = ("procedure__external_id", "procedure__patient__registry_id")
    fields = ("procedure", "visit", "due_on", "window_start", "window_end", "completed_on", "contact_method", "notes")
    readonly_fields = ("procedure", "visit", "due_on", "window_start", "window_end")

    def has_add_permission(self, request):
        return False  # visits come from the procedure's schedule

    @admin.display(boolean=True)
    def overdue(self, obj):
        return obj.is_overdue


# --- Third-party admins on this site, fixed where input (or plain use) made them answer 500 --------
# Found by tests/registry/test_admin_fuzz.py. Each is re-registered as a subclass of the app's own admin.


class AuditEventModelFilter(pghistory_admin.EventModelFilter):
    """pghistory's event-model filter, matching nothing for a value that names no event model.

    The original hands the value to apps.get_model(), which raises LookupError or ValueError.
    """

    def queryset(self, request, queryset):
        if self.value() and self.value() not in {str(value) for value, _label in self.lookup_choices}:
            return queryset.none()
        return super().queryset(request, queryset)


class AuditEventsAdmin(pghistory_admin.EventsAdmin):
    """The audit trail across all tables (Pghistory > Events), safe to open with any query string.

    pghistory registers it itself, after this module is imported: settings.PGHISTORY_ADMIN_CLASS names it.
    """

    # pghistory's changelist predates Django's facets (its get_queryset() takes no exclude_parameters),
    # and counting every audit event per filter choice would be slow anyway.
    show_facets = admin.ShowFacets.NEVER

    def get_list_filter(self, request):
        return [
            AuditEventModelFilter if spec is pghistory_admin.EventModelFilter else spec
            for spec in super().get_list_filter(request)
        ]

    def changelist_view(self, request, extra_context=None):
        # ?obj=<app.model>:<pk> is loaded with refresh_from_db(): a missing row or a malformed pk raises.
        label, colon, pk = request.GET.get("obj", "").partition(":")
        if colon:
            try:
                found = apps.get_model(label)._default_manager.filter(pk=pk).exists()
            except (LookupError, ValueError, TypeError, ValidationError):
                found = False
            if not found:
                raise Http404("No such object.")
        # ?back= becomes the "Back" link: only a path on this site, never another site or a javascript: URL.
        back = request.GET.get("back")
        if back is not None and not url_has_allowed_host_and_scheme(back, allowed_hosts=None):
            request.GET = request.GET.copy()
            del request.GET["back"]
        return super().changelist_view(request, extra_context)


class LockoutAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """django-axes' failed-login list, whose "Clean up expired attempts" action works.

    The action reads request.axes_attempt_time, which axes sets only on requests that log in.
    """

    @admin.action(description=axes_admin.AccessAttemptAdmin.cleanup_expired_attempts.short_description)
    def cleanup_expired_attempts(self, request, queryset):
        AxesProxyHandler.update_request(request)
        return super().cleanup_expired_attempts(request, queryset)


# axes registered its admin already (it comes before registry in INSTALLED_APPS), unless AXES_ENABLE_ADMIN is off.
if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, LockoutAttemptAdmin)
