"""Read-only lists of follow-up reports and medical reviews (safety reviewers' and administrators' overview).

Both are written from the event's page ("Add follow-up", "Record medical review"), through the services;
here they are only read, limited by the same selectors as everything else.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils.html import format_html

from events.choices import SERIOUS_CRITERIA
from events.models import FollowUpReport, MedicalReview
from events.selectors import follow_ups_for_user, reviews_for_user
from events.timeline import follow_up_changes
from registry.admin_base import clinic_filter


class _ReadOnlyCaseAdmin(admin.ModelAdmin):
    selector = None

    def get_queryset(self, request):
        return type(self).selector(request.user)

    def has_add_permission(self, request):
        return False  # from the event's page, through the service

    def has_change_permission(self, request, obj=None):
        return False  # append-only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="event", ordering="event__external_id")
    def event_link(self, obj):
        url = reverse("admin:events_adverseevent_change", args=[quote(obj.event_id)])
        return format_html('<a href="{}">{}</a>', url, obj.event.external_id)

    @admin.display(description="clinic", ordering="event__procedure__clinic__code")
    def clinic(self, obj):
        return obj.event.procedure.clinic.code


@admin.register(FollowUpReport)
class FollowUpReportAdmin(_ReadOnlyCaseAdmin):
    selector = staticmethod(follow_ups_for_user)
    list_display = ("event_link", "number", "received_on", "changed", "created_by", "clinic")
    list_display_links = ("number",)
    list_filter = (clinic_filter("event__procedure__clinic_id"), "received_on")
    search_fields = ("event__external_id", "narrative")
    fields = ("event", "number", "received_on", "narrative", "changed", "created_by", "created_at")
    readonly_fields = fields

    @admin.display(description="changes")
    def changed(self, obj):
        return "; ".join(str(change) for change in follow_up_changes(obj)) or "-"


@admin.register(MedicalReview)
class MedicalReviewAdmin(_ReadOnlyCaseAdmin):
    selector = staticmethod(reviews_for_user)
    list_display = (
        "event_link",
        "reviewed_at",
        "reviewer",
        "serious",
        "causality_procedure",
        "causality_product",
        "expectedness",
        "clinic",
    )
    list_display_links = ("reviewed_at",)
    list_filter = (clinic_filter("event__procedure__clinic_id"), "serious", "expectedness", "causality_procedure")
    search_fields = ("event__external_id", "comment")
    readonly_fields = (
        "event",
        "reviewer",
        "reviewed_at",
        "serious",
        *SERIOUS_CRITERIA.values(),
        "causality_procedure",
        "causality_product",
        "expectedness",
        "expectedness_basis",
        "comment",
    )
    fields = readonly_fields
