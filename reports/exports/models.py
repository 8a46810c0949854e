"""The export log: who exported what, when, with which filters and how many rows."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from reports.choices import LIMITED_DATA_SET_KINDS, ExportKind


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ExportLog(models.Model):
    """One export. Append-only: once its row count is recorded the entry can no longer change.

    Tamper-evident twice over: a trigger refuses updates of a finished entry and every
    delete, and pghistory records every insert and update in the audit trail.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(max_length=24, choices=ExportKind.choices)
    run = models.ForeignKey(
        "reports.IncidenceRun", on_delete=models.PROTECT, null=True, blank=True, related_name="exports"
    )
    filters = models.JSONField(default=dict, blank=True, help_text="The filters the export applied.")
    clinic_ids = ArrayField(
        models.BigIntegerField(), null=True, blank=True, help_text="Clinics the export covered; empty: every clinic."
    )
    row_count = models.PositiveIntegerField(null=True, blank=True, help_text="Empty while the export is streaming.")
    purpose = models.TextField(
        blank=True,
        help_text="The data-use purpose the requester stated; required for a limited data set export.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The administrators' export log list, newest first, per user.
            models.Index(fields=["user", "created_at"], name="exportlog_user_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind__in=LIMITED_DATA_SET_KINDS) | ~models.Q(purpose=""),
                name="exportlog_limited_data_set_has_purpose",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="exportlog_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="exportlog_finished_is_final",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__row_count__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.user} at {self.created_at:%Y-%m-%d %H:%M}"
