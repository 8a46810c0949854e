"""Admin building blocks shared by every clinical ModelAdmin.

The admin is the data-entry screen, not a second rules engine: rows come from
the selectors, writes go through the services, and every picker, filter and
history page is limited to the clinics the user may see.
"""

from __future__ import annotations

import pghistory.models
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from core.models import ConcurrentUpdate, VersionedModel
from core.text import validate_safe_free_text
from registry import selectors


def clinic_filter(path: str, title: str = "clinic"):
    """Return a list filter over the clinics the user may see (never other clinics' names)."""

    class ClinicFilter(admin.SimpleListFilter):
        parameter_name = "clinic"

        def lookups(self, request, model_admin):
            # Values as the query string carries them: "Show counts" hands each lookup value to queryset().
            return [(str(c.pk), c.code) for c in selectors.clinics_for_user(request.user).only("pk", "code")]

        def queryset(self, request, queryset):
            value = self.value()
            if value is None:
                return queryset
            value = str(value)
            # An id that is not a number, or too large for the column, matches nothing.
            if not value.isascii() or not value.isdigit() or len(value) > 18:
                return queryset.none()
            return queryset.filter(**{path: int(value)})

    ClinicFilter.title = _(title)
    return ClinicFilter


class OverdueFilter(admin.SimpleListFilter):
    """Rows with a visit whose window closed without completion (subclasses name the visit column)."""

    title = _("overdue")
    parameter_name = "overdue"
    visit_id_field = "pk"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("no", _("Not overdue"))]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        return selectors.filter_overdue(queryset, overdue=self.value() == "yes", visit_id_field=self.visit_id_field)


class RetractedFilter(admin.SimpleListFilter):
    """Active rows by default: a retracted row shows only when this filter asks for it (it stays in audit views)."""

    title = _("retracted")
    parameter_name = "retracted"

    def lookups(self, request, model_admin):
        return [("no", _("Active")), ("yes", _("Retracted")), ("all", _("All, retracted included"))]

    def value(self):
        return super().value() or "no"

    def choices(self, changelist):
        choices = super().choices(changelist)
        next(choices)  # Django's "All" drops the parameter, which here means "Active": "all" replaces it
        yield from choices

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(retracted_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(retracted_at__isnull=True)


class SafeAutocompleteSelect(AutocompleteSelect):
    """An autocomplete that re-renders a form holding a malformed id instead of crashing.

    Django's widget looks the submitted value up as-is; a non-integer id raises
    ValueError (a 500) while the form is shown again with its error.
    """

    def optgroups(self, name, value, attr=None):
        target = self.field.target_field
        valid = []
        for item in value:
            try:
                target.to_python(item)
            except ValidationError:
                continue
            valid.append(item)
        return super().optgroups(name, valid, attr)


STALE_MESSAGE = (
    "Someone else changed this record after you opened it. Your changes were not saved; "
    "the page now shows the current values."
)


class VersionCheckForm(forms.ModelForm):
    """Carries the version the user started editing, so a later save cannot overwrite another's."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["expected_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        expected = cleaned.get("expected_version")
        if self.instance.pk and expected is not None and expected != self.instance.version:
            raise ValidationError(STALE_MESSAGE, code="stale")
        return cleaned


class RuleCheckedForm(forms.ModelForm):
    """Runs the rules across rows of the row's service (``rule_check``) as the form validates.

    Each service checks them again under its locks; checked here first, a broken rule shows
    against its field on the form, as an own-field rule does, instead of refusing the save.
    """

    rule_check = None  # a service's check, e.g. registry.services.patient_check
    rule_check_kwarg = ""

    def validate_unique(self):
        # Django calls validate_unique() last, once the instance holds the form's values.
        super().validate_unique()
        if self.errors or type(self).rule_check is None:
            return
        try:
            type(self).rule_check(**{self.rule_check_kwarg: self.instance})
        except ValidationError as exc:
            for field, found in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, found)


def with_rule_check(form_class, owner):
    """Return ``form_class`` running the rule check of ``owner`` (a ScopedAdmin), if it names one."""
    check = getattr(type(owner), "check_service", None)
    if check is None or issubclass(form_class, RuleCheckedForm):
        return form_class
    attrs = {"rule_check": staticmethod(check), "rule_check_kwarg": owner.service_kwarg}
    return type(f"{form_class.__name__}RuleChecked", (RuleCheckedForm, form_class), attrs)


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows, pickers and history follow registry.selectors.

    Subclasses set ``selector`` (a function of the user returning a queryset) and
    ``save_service`` (a function taking actor= and the instance by ``service_kwarg``) and
    ``check_service`` (its rules across rows, taking the instance the same way; see RuleCheckedForm).
    """

    selector = None
    save_service = None
    check_service = None
    service_kwarg = ""
    object_history_template = "admin/registry/object_history.html"

    def get_queryset(self, request) -> QuerySet:
        qs = type(self).selector(request.user)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    # Limits every foreign-key picker (select, autocomplete source, raw-id lookup) to visible rows.
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        limited = self.scoped_choices(db_field.related_model, request.user)
        if limited is not None:
            kwargs["queryset"] = limited
        if db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def scoped_choices(self, model, user):
        """Return the rows of ``model`` that ``user`` may pick, or None if ``model`` is not clinic-scoped.

        A scoped model's own admin (registered by whichever app owns it) names its selector.
        """
        if not self.admin_site.is_registered(model):
            return None
        owner = self.admin_site.get_model_admin(model)
        selector = getattr(type(owner), "selector", None)
        return selector(user) if selector is not None else None

    def has_delete_permission(self, request, obj=None):
        # Clinical data is never deleted from the data-entry screen; events are retracted.
        return False

    def _versioned(self) -> bool:
        return issubclass(self.model, VersionedModel)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self._versioned() and not issubclass(self.form, VersionCheckForm):
            kwargs.setdefault("form", type(f"{self.form.__name__}Versioned", (VersionCheckForm, self.form), {}))
        return with_rule_check(super().get_form(request, obj, change=change, **kwargs), self)

    def get_formsets_with_inlines(self, request, obj=None):
        # An inline row is checked by the rule check of its own model's admin, as save_formset saves it.
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            if self.admin_site.is_registered(inline.model):
                formset.form = with_rule_check(formset.form, self.admin_site.get_model_admin(inline.model))
            yield formset, inline

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._versioned() or obj is None:
            return fieldsets
        (name, options), *rest = fieldsets
        return [(name, {**options, "fields": (*options["fields"], "expected_version")}), *rest]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConcurrentUpdate:
            # Lost the race inside the UPDATE itself: the transaction rolled back, nothing was written.
            messages.error(request, STALE_MESSAGE)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        expected = form.cleaned_data.get("expected_version")
        if change and expected is not None:
            obj.version = expected
        try:
            type(self).save_service(actor=request.user, **{self.service_kwarg: obj})
        except ValidationError as exc:  # a rule that only the service sees (it re-validates under lock)
            raise PermissionDenied(exc.messages) from exc

    def save_formset(self, request, form, formset, change):
        # An inline row is saved by the service of its own model's admin, which may live in another app.
        owner = self.admin_site.get_model_admin(formset.model)
        service, kwarg = type(owner).save_service, owner.service_kwarg
        for instance in formset.save(commit=False):
            try:
                service(actor=request.user, **{kwarg: instance})
            except ValidationError as exc:  # as in save_model; the whole save rolls back
                raise PermissionDenied(exc.messages) from exc
        formset.save_m2m()

    def history_view(self, request, object_id, extra_context=None):
        # get_object() goes through get_queryset(): another clinic's id answers 404.
        obj = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if obj is not None:
            extra_context["audit_events"] = audit_events_for(obj)
        return super().history_view(request, object_id, extra_context=extra_context)


def audit_events_for(obj) -> list:
    """Return the pghistory events of ``obj`` (who, when, what changed), oldest first."""
    events = list(pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at", "pgh_id"))
    user_ids = {(ev.pgh_context or {}).get("user") for ev in events} - {None}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    for ev in events:
        ev.actor_name = names.get((ev.pgh_context or {}).get("user"), "")
    return events


class RetractionForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        validators=[validate_safe_free_text],
        help_text="Why the record is withdrawn (duplicate, wrong patient, entered in error...).",
    )


RETRACTION_FIELDS = ("retracted_at", "retracted_by", "retraction_reason")


class RetractionAdminMixin:
    """Per-row "Retract..." (with a reason) and "Restore" buttons for a ScopedAdmin of a retractable model.

    The services decide: the clinic's clinicians and coordinators retract, registry administrators
    restore. A retracted row (or one belonging to a retracted row, see frozen()) is shown read-only.
    """

    retract_service = None
    restore_service = None
    change_form_template = "admin/registry/retractable_change_form.html"

    def frozen(self, obj) -> bool:
        """Return True when ``obj`` may no longer be edited: it, or the row it belongs to, is retracted."""
        return obj is not None and obj.retracted_at is not None

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self.frozen(obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        shown = obj is not None and obj.retracted_at is not None
        if shown and "retraction_reason" not in flatten_fieldsets(fieldsets):
            fieldsets.append((_("Retraction"), {"fields": RETRACTION_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.retracted_at is not None:
            readonly += tuple(f for f in RETRACTION_FIELDS if f not in readonly)
        return readonly

    def get_list_filter(self, request):
        return (*super().get_list_filter(request), RetractedFilter)

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/retract/", wrap(self.retract_view), name=self._url_name("retract")),
            path("<path:object_id>/restore/", wrap(self.restore_view), name=self._url_name("restore")),
            *super().get_urls(),
        ]

    def _visible_object(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))  # through get_queryset: another clinic's row is 404
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id among the rows you may see.")
        return obj

    def _change_url(self, obj):
        return reverse(f"admin:{self._url_name('change')}", args=[quote(obj.pk)])

    def retract_view(self, request, object_id):
        """Return the page asking for a reason, or retract the row and go back to it."""
        obj = self._visible_object(request, object_id)
        if not super().has_change_permission(request, obj):
            raise PermissionDenied
        form = RetractionForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                type(self).retract_service(
                    actor=request.user, reason=form.cleaned_data["reason"], **{self.service_kwarg: obj}
                )
            except ValidationError as exc:
                messages.error(request, "; ".join(exc.messages))
            else:
                messages.success(request, f"{self.opts.verbose_name.capitalize()} {obj} retracted.")
            return HttpResponseRedirect(self._change_url(obj))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Retract {self.opts.verbose_name} {obj}",
            "object": obj,
            "form": form,
            "opts": self.opts,
            "change_url": self._change_url(obj),
        }
        return TemplateResponse(request, "admin/registry/retract_form.html", context)

    def restore_view(self, request, object_id):
        """Restore the row (POST; registry administrators only) and go back to it."""
        obj = self._visible_object(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            type(self).restore_service(actor=request.user, **{self.service_kwarg: obj})
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, f"{self.opts.verbose_name.capitalize()} {obj} restored.")
        return HttpResponseRedirect(self._change_url(obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["retraction"] = {
                "retracted": obj.retracted_at is not None,
                "can_retract": not self.frozen(obj) and super().has_change_permission(request, obj),
                "can_restore": obj.retracted_at is not None and selectors.is_registry_admin(request.user),
                "retract_url": reverse(f"admin:{self._url_name('retract')}", args=[quote(obj.pk)]),
                "restore_url": reverse(f"admin:{self._url_name('restore')}", args=[quote(obj.pk)]),
            }
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)
