"""Admin: the export log (read-only, registry administrators) and the overdue follow-up summary per clinic.

Registered by reports/admin.py (``admin.site.register(ExportLog, ExportLogAdmin)``), the
module Django's admin autodiscovery imports.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.dates import today
from registry.selectors import visits_for_user

OVERDUE_TEMPLATE = "admin/reports/exportlog/overdue_visits.html"


class ExportLogAdmin(admin.ModelAdmin):
    """Who exported what: read-only for everyone (the database refuses edits of finished entries anyway)."""

    list_display = ("created_at", "user", "kind", "purpose", "row_count", "finished_at", "clinics")
    list_filter = ("kind",)
    list_select_related = ("user",)
    search_fields = ("user__username", "purpose")
    date_hierarchy = "created_at"
    fields = ("user", "kind", "purpose", "run", "filters", "clinic_ids", "created_at", "finished_at", "row_count")
    readonly_fields = fields

    @admin.display(description="clinics")
    def clinics(self, obj):
        return "all" if obj.clinic_ids is None else ", ".join(str(pk) for pk in obj.clinic_ids) or "none"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        overdue = path(
            "overdue-visits/", self.admin_site.admin_view(self.overdue_view), name="reports_exportlog_overdue_visits"
        )
        return [overdue, *super().get_urls()]

    def overdue_view(self, request):
        """Return the count of overdue follow-up visits per clinic the user may see."""
        if not request.user.has_perm("registry.view_followupvisit"):
            raise PermissionDenied
        on = today()
        rows = list(
            visits_for_user(request.user)
            .overdue(on=on)
            .values("procedure__clinic_id", "procedure__clinic__code")
            .annotate(overdue=Count("id"), oldest=Min("window_end"))
            .order_by("procedure__clinic__code")
        )
        rows = [{"clinic_id": r["procedure__clinic_id"], "code": r["procedure__clinic__code"], **r} for r in rows]
        context = {
            **self.admin_site.each_context(request),
            "title": "Overdue follow-up visits",
            "on": on,
            "rows": rows,
            "total": sum(r["overdue"] for r in rows),
            "csv_url": reverse("export-overdue-visits-csv"),
            "visits_url": reverse("admin:registry_followupvisit_changelist"),
        }
        return TemplateResponse(request, OVERDUE_TEMPLATE, context)
