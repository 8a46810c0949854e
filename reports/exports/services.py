"""Writes of the export log (reports.exports.models.ExportLog)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.audit import audit_context
from registry.selectors import clinic_scope
from reports.exports.models import ExportLog


def export_log_start(*, user, kind: str, filters: dict | None = None, run=None, purpose: str = "") -> ExportLog:
    """Return a new export-log entry for an export ``user`` is starting (row count still unknown).

    The covered clinics are the user's scope at this instant, written down with the entry;
    ``purpose`` is the data-use purpose stated for a limited data set (Hardening 18).
    """
    scope = clinic_scope(user)
    with transaction.atomic(), audit_context(user, "export_start"):
        return ExportLog.objects.create(
            user=user,
            kind=kind,
            run=run,
            filters=filters or {},
            clinic_ids=None if scope is None else sorted(scope),
            purpose=purpose,
        )


def export_log_finish(*, log: ExportLog, row_count: int) -> ExportLog:
    """Return the entry with its row count recorded; after this it can never change."""
    with transaction.atomic(), audit_context(log.user, "export_finish"):
        ExportLog.objects.filter(pk=log.pk, row_count__isnull=True).update(
            row_count=row_count, finished_at=timezone.now()
        )
    log.refresh_from_db()
    return log
