"""Admin: the export log (read-only, registry administrators) and the overdue follow-up summary per clinic.

Registered when reports/admin.py imports this module (``from reports.exports import admin``):
the admin builds its URLs from the registry when config.urls loads, so the registration
must happen during admin autodiscovery.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.dates import today
from registry.selectors import visits_for_user
from reports.exports.models import ExportLog

OVERDUE_TEMPLATE = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% block content %}
<p>Follow-up visits not completed whose window closed before {{ on|date:"Y-m-d" }}, per clinic.
Download the chase list as CSV, or open the visits in the follow-up visit list.</p>
<table>
  <thead><tr><th>Clinic</th><th>Overdue visits</th><th>Oldest window end</th><th></th><th></th></tr></thead>
  <tbody>
  {% for row in rows %}
    <tr>
      <td>{{ row.code }}</td><td>{{ row.overdue }}</td><td>{{ row.oldest|date:"Y-m-d" }}</td>
      <td><a href="{{ csv_url }}?clinic={{ row.code|urlencode }}">CSV</a></td>
      <td><a href="{{ visits_url }}?overdue=yes&amp;clinic={{ row.clinic_id }}">Visits</a></td>
    </tr>
  {% empty %}
    <tr><td colspan="5">No overdue visits.</td></tr>
  {% endfor %}
  </tbody>
  {% if rows %}<tfoot><tr><th>Total</th><th>{{ total }}</th><th></th>
    <th><a href="{{ csv_url }}">CSV</a></th><th></th></tr></tfoot>{% endif %}
</table>
{% endblock %}
"""
)


@admin.register(ExportLog)
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
