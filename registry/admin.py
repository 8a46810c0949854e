"""Data entry for clinics, patients, procedures and follow-up visits."""

from __future__ import annotations

from axes import admin as axes_admin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from pghistory.admin import core as pghistory_admin

from registry import selectors, services
from registry.admin_base import OverdueFilter, RetractionAdminMixin, ScopedAdmin, clinic_filter
from registry.models import Clinic, ContactAttempt, FollowUpVisit, Membership, Patient, Procedure


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

    # ``obj`` is the patient: nothing is added to or changed under a retracted one.
    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj is not None and obj.is_retracted)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj is not None and obj.is_retracted)


@admin.display(description="active", boolean=True)
def is_active(obj) -> bool:
    return obj.retracted_at is None


def procedure_frozen(procedure) -> bool:
    """Return True when ``procedure`` or its patient is retracted (nothing under it may change)."""
    return procedure is not None and (procedure.is_retracted or procedure.patient.is_retracted)


def visit_frozen(visit) -> bool:
    """Return True when ``visit``, its procedure or its patient is retracted."""
    return visit is not None and (visit.is_retracted or procedure_frozen(visit.procedure))


@admin.register(Patient)
class PatientAdmin(RetractionAdminMixin, ScopedAdmin):
    retract_service = staticmethod(services.patient_retract)
    restore_service = staticmethod(services.patient_restore)
    selector = staticmethod(selectors.patients_for_user)
    save_service = staticmethod(services.patient_save)
    check_service = staticmethod(services.patient_check)
    service_kwarg = "patient"
    list_display = (
        "registry_id",
        "clinic",
        "sex",
        "birth_year",
        "enrolled_on",
        "withdrawn_on",
        "death_date",
        is_active,
    )
    list_filter = (clinic_filter("clinic_id"), "sex", "enrolled_on")
    search_fields = ("registry_id",)
    readonly_fields = ("registry_id", "created_at", "updated_at")
    autocomplete_fields = ("clinic",)
    fieldsets = (
        (None, {"fields": ("registry_id", "clinic", "sex", "birth_year")}),
        (
            "Registry participation",
            {"fields": ("enrolled_on", "consent_on", "withdrawn_on", "death_date", "death_cause")},
        ),
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

    def has_change_permission(self, request, obj=None):
        # ``obj`` is the procedure: the visits of a retracted procedure (or patient) are frozen with it.
        return super().has_change_permission(request, obj) and not procedure_frozen(obj)

    @admin.display(description="status")
    def status(self, obj):
        return visit_status(obj)


def visit_status(visit) -> str:
    """Return the visit's state as the data-entry screen shows it."""
    if visit.is_retracted:
        return "retracted"
    if visit.completed_on:
        return "completed"
    if selectors.visit_is_overdue(visit):
        return format_html('<strong style="color:#ba2121">{}</strong>', "OVERDUE")
    if visit.is_overdue:
        return "missed, not chased"  # window closed, but the patient died, withdrew or is lost to follow-up
    return "open"


class LostToFollowUpFilter(admin.SimpleListFilter):
    title = "lost to follow-up"
    parameter_name = "lost"

    def lookups(self, request, model_admin):
        return [("yes", "Lost to follow-up"), ("no", "Followed up")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(lost_to_follow_up_on__isnull=self.value() == "no")
        return queryset


class ProcedureOverdueFilter(OverdueFilter):
    visit_id_field = "procedure_id"


@admin.register(Procedure)
class ProcedureAdmin(RetractionAdminMixin, ScopedAdmin):
    retract_service = staticmethod(services.procedure_retract)
    restore_service = staticmethod(services.procedure_restore)
    change_form_template = "admin/registry/procedure/change_form.html"
    selector = staticmethod(selectors.procedures_for_user)
    save_service = staticmethod(services.procedure_save)
    check_service = staticmethod(services.procedure_check)
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
        is_active,
    )
    list_filter = (
        clinic_filter("clinic_id"),
        "site",
        "cell_type",
        "cell_source",
        "guidance",
        ProcedureOverdueFilter,
        LostToFollowUpFilter,
        "performed_on",
    )
    search_fields = ("external_id", "patient__registry_id", "product_lot")
    autocomplete_fields = ("patient",)
    readonly_fields = ("clinic", "follow_up", "created_at", "updated_at")
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
        ("Follow-up", {"fields": ("follow_up",)}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (FollowUpVisitInline,)  # intake/admin.py adds the adverse events of events/

    def frozen(self, obj) -> bool:
        return procedure_frozen(obj)

    @admin.display(description="follow-up")
    def follow_up(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        if obj.lost_to_follow_up_on:
            return f"Lost to follow-up since {obj.lost_to_follow_up_on} (marked by {obj.lost_to_follow_up_by})."
        logged = selectors.contact_attempts_on_open_visits(obj)
        return (
            f"{logged} contact attempt(s) logged on open visits; {settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS} "
            "let a coordinator mark the procedure lost to follow-up."
        )

    def get_urls(self):
        lost = path(
            "<path:object_id>/lost-to-follow-up/",
            self.admin_site.admin_view(self.lost_to_follow_up_view),
            name=self._url_name("lost_to_follow_up"),
        )
        return [lost, *super().get_urls()]

    def lost_to_follow_up_view(self, request, object_id):
        """Mark the procedure lost to follow-up (or, with ``undo``, back on follow-up) and go back to it."""
        procedure = self._visible_object(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        undo = "undo" in request.POST
        service = services.procedure_unmark_lost_to_follow_up if undo else services.procedure_mark_lost_to_follow_up
        try:
            service(actor=request.user, procedure=procedure)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            done = "is back on follow-up" if undo else "is marked lost to follow-up"
            messages.success(request, f"Procedure {procedure.external_id} {done}.")
        return HttpResponseRedirect(self._change_url(procedure))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not self.frozen(obj) and selectors.is_coordinator_of(request.user, obj.clinic_id):
            context["lost_to_follow_up"] = {
                "url": reverse(f"admin:{self._url_name('lost_to_follow_up')}", args=[quote(obj.pk)]),
                "lost": obj.lost_to_follow_up_on is not None,
            }
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


class ContactAttemptForm(forms.ModelForm):
    class Meta:
        model = ContactAttempt
        fields = ("attempted_on", "method", "outcome", "notes")

    def clean(self):
        cleaned = super().clean()
        visit = self.instance.visit  # the formset sets the parent visit before validating
        errors = services.contact_attempt_errors(
            attempted_on=cleaned.get("attempted_on"), performed_on=visit.procedure.performed_on
        )
        for field, message in errors.items():
            self.add_error(field, message)
        return cleaned


class ContactAttemptInline(admin.TabularInline):
    """Attempts to reach the patient about this visit: logged, never edited or deleted."""

    model = ContactAttempt
    form = ContactAttemptForm
    extra = 0
    can_delete = False
    fields = ("attempted_on", "method", "outcome", "notes", "recorded_by", "created_at")
    readonly_fields = ("recorded_by", "created_at")

    # The attempts follow the visit's permissions (the role groups hold none of their own); ``obj`` is the visit.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("registry.view_followupvisit")

    def has_add_permission(self, request, obj=None):
        open_visit = obj is not None and obj.completed_on is None and not visit_frozen(obj)
        return open_visit and request.user.has_perm("registry.change_followupvisit")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FollowUpVisit)
class FollowUpVisitAdmin(RetractionAdminMixin, ScopedAdmin):
    retract_service = staticmethod(services.visit_retract)
    restore_service = staticmethod(services.visit_restore)
    inlines = (ContactAttemptInline,)
    selector = staticmethod(selectors.visits_for_user)
    save_service = staticmethod(services.visit_save)
    check_service = staticmethod(services.visit_check)
    service_kwarg = "visit"
    list_display = ("procedure", "visit", "due_on", "window_end", "completed_on", "overdue", is_active)
    list_filter = (clinic_filter("procedure__clinic_id"), OverdueFilter, "visit")
    search_fields = ("procedure__external_id", "procedure__patient__registry_id")
    fields = ("procedure", "visit", "due_on", "window_start", "window_end", "completed_on", "contact_method", "notes")
    readonly_fields = ("procedure", "visit", "due_on", "window_start", "window_end")

    def has_add_permission(self, request):
        return False  # visits come from the procedure's schedule

    def frozen(self, obj) -> bool:
        return visit_frozen(obj)

    @admin.display(boolean=True)
    def overdue(self, obj):
        return selectors.visit_is_overdue(obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ContactAttempt:
            return super().save_formset(request, form, formset, change)
        for attempt in formset.save(commit=False):
            try:
                services.contact_attempt_log(
                    actor=request.user,
                    visit=form.instance,
                    attempted_on=attempt.attempted_on,
                    method=attempt.method,
                    outcome=attempt.outcome,
                    notes=attempt.notes,
                )
            except ValidationError as exc:  # as in ScopedAdmin.save_formset; the whole save rolls back
                raise PermissionDenied(exc.messages) from exc
        return None


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
