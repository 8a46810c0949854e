"""The reference safety information in the admin: registry administrators add and change entries (never delete;
an entry that no longer holds is retired), safety reviewers read it."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.dates import today
from events import services
from events.models import ReferenceSafetyInformation


class InForceFilter(admin.SimpleListFilter):
    title = _("in force")
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [("yes", _("In force")), ("no", _("Retired"))]

    def queryset(self, request, queryset):
        retired = Q(retired_on__isnull=False, retired_on__lte=today())
        if self.value() == "yes":
            return queryset.exclude(retired)
        if self.value() == "no":
            return queryset.filter(retired)
        return queryset


@admin.register(ReferenceSafetyInformation)
class ReferenceSafetyInformationAdmin(admin.ModelAdmin):
    list_display = ("term", "cell_type", "category", "meddra_pt_code", "source", "added_on", "retired_on", "in_force")
    list_filter = (InForceFilter, "cell_type", "category")
    search_fields = ("term", "meddra_pt_code", "source")
    fields = ("cell_type", "category", "meddra_pt_code", "term", "source", "added_on", "retired_on")

    @admin.display(description="in force", boolean=True)
    def in_force(self, obj):
        return obj.retired_on is None or obj.retired_on > today()

    def has_delete_permission(self, request, obj=None):
        # Never deleted (a trigger refuses it too): an old review's basis must stay readable.
        return False

    def save_model(self, request, obj, form, change):
        services.reference_safety_information_save(actor=request.user, entry=obj)
