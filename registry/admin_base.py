"""Admin building blocks shared by every clinical ModelAdmin.

The admin is the data-entry screen, not a second rules engine: rows come from
the selectors, writes go through the services, and every picker, filter and
history page is limited to the clinics the user may see.
"""

from __future__ import annotations

import pghistory.models
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from core.models import ConcurrentUpdate, VersionedModel
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


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows, pickers and history follow registry.selectors.

    Subclasses set ``selector`` (a function of the user returning a queryset) and
    ``save_service`` (a function taking actor= and the instance by ``service_kwarg``).
    """

    selector = None
    save_service = None
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
        return super().get_form(request, obj, change=change, **kwargs)

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
