"""Model building blocks every domain app shares: versioned rows, retraction, constraint helpers.

Nothing here knows a clinic, a patient or an event; registry/, events/ and reports/ build on it.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Q

from core.text import UNSAFE_IDENTIFIER_CLASS, validate_safe_free_text


def in_choices(field: str, choices, *, blank: bool = False) -> Q:
    """Return a Q that holds when ``field`` carries one of the vocabulary's codes."""
    values = list(choices.values) + ([""] if blank else [])
    return Q(**{f"{field}__in": values})


def visible_characters_only(field: str, *, prefix: str) -> models.CheckConstraint:
    """Return the CHECK constraint refusing control, bidi and zero-width characters in an id or code.

    validate_safe_identifier reports the same characters field by field first (Hardening 8).
    """
    return models.CheckConstraint(condition=~Q(**{f"{field}__regex": UNSAFE_IDENTIFIER_CLASS}), name=f"{prefix}_safe")


def related_or_none(instance: models.Model, field: str):
    """Return the related object, or None when it is not set yet.

    On an admin add page an inline's parent is an unsaved instance: its id is None
    but the object (with the values just typed) is cached and worth validating against.
    """
    try:
        return getattr(instance, field)
    except ObjectDoesNotExist:
        return None


class ConcurrentUpdate(Exception):
    """The row changed since the version the writer read: its write would overwrite someone else's."""


def bump_version_trigger(prefix: str) -> pgtrigger.Trigger:
    """Return the trigger that increments ``version`` on every UPDATE, whatever issued it."""
    return pgtrigger.Trigger(
        name=f"{prefix}_bump_version",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        func="NEW.version := OLD.version + 1; RETURN NEW;",
    )


class VersionedModel(models.Model):
    """Optimistic concurrency: every save compares the version inside its UPDATE.

    ``UPDATE ... WHERE id = %s AND version = %s`` matches no row when someone else
    wrote first, so two racing edits can never both win. The database trigger made
    by bump_version_trigger() increments the version on every UPDATE, including
    imports, bulk updates and raw SQL, so an ETag built on it never lies.
    """

    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        abstract = True

    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update):
        values = [v for v in values if v[0].attname != "version"]  # the trigger owns it
        expected = self.version
        updated = super()._do_update(
            base_qs.filter(version=expected), using, pk_val, values, update_fields, forced_update
        )
        if updated:
            self.version = expected + 1
            return True
        if base_qs.filter(pk=pk_val).exists():
            raise ConcurrentUpdate(
                f"{self._meta.verbose_name} {pk_val} was changed by someone else "
                f"(version {expected} is no longer current)."
            )
        return False


class CleanConstraintsMixin(models.Model):
    """Validate single-row rules once, in clean(), with field-level messages.

    Every CheckConstraint restates a rule that clean() already reports against the
    right field, so checking them again in validate_constraints() would only
    repeat the message as a form-wide error. Unique constraints are still checked.
    """

    class Meta:
        abstract = True

    def validate_constraints(self, exclude=None):
        saved = self._meta.constraints
        try:
            self._meta.constraints = [c for c in saved if not isinstance(c, models.CheckConstraint)]
            super().validate_constraints(exclude=exclude)
        finally:
            self._meta.constraints = saved


class Retractable(models.Model):
    """A row entered in error is retracted with a reason, never deleted.

    A retracted row leaves statistics, overdue lists and exports, stays in audit views, and a
    registry administrator can restore it (which clears these three fields again).
    """

    retracted_at = models.DateTimeField(null=True, blank=True, editable=False)
    retracted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # db_default: the importer and raw SQL insert rows without naming the column.
    retraction_reason = models.TextField(
        blank=True, db_default="", editable=False, validators=[validate_safe_free_text]
    )

    class Meta:
        abstract = True

    @property
    def is_retracted(self) -> bool:
        return self.retracted_at is not None


def retraction_has_reason(prefix: str) -> models.CheckConstraint:
    """Return the CHECK constraint that a retracted row names its reason."""
    return models.CheckConstraint(
        condition=Q(retracted_at__isnull=True) | ~Q(retraction_reason=""), name=f"{prefix}_retraction_has_reason"
    )


class IdempotencyRecord(models.Model):
    """The first response to an API POST sent with an Idempotency-Key (see core.api.idempotency)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_idempotencyrecord"  # created by registry 0004, moved here without a copy
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")]
        indexes = [
            # Nightly purge of keys older than their retention (core.tasks.purge_idempotency_keys).
            models.Index(fields=["created_at"], name="idempotency_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
