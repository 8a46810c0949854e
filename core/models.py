"""Model building blocks every domain app shares: versioned rows, retraction, constraint helpers.

Nothing here knows a clinic, a patient or an event; registry/, events/ and reports/ build on it.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import DatabaseError, models, router, transaction
from django.db.models import Q, signals

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
    """Optimistic concurrency: every save of a stored row compares the version inside its UPDATE.

    ``UPDATE ... WHERE id = %s AND version = %s`` matches no row when someone else
    wrote first, so two racing edits can never both win. The database trigger made
    by bump_version_trigger() increments the version on every UPDATE, including
    imports, bulk updates and raw SQL, so an ETag built on it never lies.

    save_base() issues that UPDATE itself through the public QuerySet.update(), as
    healthchecks does, so nothing depends on Django's private save steps; save() still
    prepares the instance (related fields, update_fields, deferred fields) as Django does,
    and pre_save/post_save are sent as Django sends them. Inserts are Django's own. A
    versioned model has no multi-table parent (one table, one UPDATE).
    """

    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        abstract = True

    def save_base(self, raw=False, force_insert=False, force_update=False, using=None, update_fields=None):
        meta = self._meta
        if force_insert or self.pk is None or (self._state.adding and meta.pk.has_default()):
            # An INSERT has no version to compare: Django's own path.
            return super().save_base(
                raw=raw, force_insert=force_insert, force_update=force_update, using=using, update_fields=update_fields
            )
        if meta.concrete_model._meta.parents:
            raise TypeError(f"{meta.label}: a VersionedModel cannot have a multi-table parent.")
        origin = type(self)
        using = using or router.db_for_write(origin, instance=self)
        signals.pre_save.send(sender=origin, instance=self, raw=raw, using=using, update_fields=update_fields)
        with transaction.mark_for_rollback_on_error(using=using):
            created = not self._update_if_current(raw=raw, using=using, update_fields=update_fields)
            if created:
                if force_update or update_fields:
                    # Django's own refusal of a forced update that found no row.
                    raise DatabaseError(
                        "Save with update_fields did not affect any rows."
                        if update_fields
                        else "Forced update did not affect any rows."
                    )
                # The row was deleted meanwhile: Django inserts it again, and so does this.
                meta.concrete_model._base_manager.using(using).bulk_create([self])
        self._state.db = using
        self._state.adding = False
        signals.post_save.send(
            sender=origin, instance=self, created=created, update_fields=update_fields, raw=raw, using=using
        )

    save_base.alters_data = True

    def _update_if_current(self, *, raw: bool, using: str, update_fields) -> bool:
        """Return True when the stored row at this version took the values; False when no row has this id.

        Raises ConcurrentUpdate when the row exists at another version.
        """
        model = self._meta.concrete_model
        fields = [
            f
            for f in self._meta.concrete_fields
            # The trigger owns the version; update_fields names fields or their attnames, as in Django.
            if not f.primary_key and not f.generated and f.attname != "version"
            and (update_fields is None or f.name in update_fields or f.attname in update_fields)
        ]  # fmt: skip
        # pre_save() stamps auto_now fields, as Django's own UPDATE does (a raw save stores what it is given).
        values = {f.attname: getattr(self, f.attname) if raw else f.pre_save(self, False) for f in fields}
        rows = model._base_manager.using(using).filter(pk=self.pk, version=self.version)
        if not values:  # nothing to write (update_fields named only the version): no UPDATE, no new version
            if rows.exists():
                return True
        elif rows.update(**values):
            self.version += 1
            return True
        if model._base_manager.using(using).filter(pk=self.pk).exists():
            raise ConcurrentUpdate(
                f"{self._meta.verbose_name} {self.pk} was changed by someone else "
                f"(version {self.version} is no longer current)."
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
        # Model.validate_constraints() less the CHECK constraints, through the public
        # BaseConstraint.validate(): the model's shared _meta is only read, so concurrent
        # validations in a threaded server cannot see each other's state.
        using = router.db_for_write(type(self), instance=self)
        errors = {}
        for model_class, constraints in self.get_constraints():
            for constraint in constraints:
                if isinstance(constraint, models.CheckConstraint):
                    continue
                try:
                    constraint.validate(model_class, self, exclude=exclude, using=using)
                except ValidationError as exc:
                    # As Django files them: a one-field unique clash under its field, the rest form-wide.
                    fields = getattr(constraint, "fields", ())
                    if getattr(exc, "code", None) == "unique" and len(fields) == 1:
                        errors.setdefault(fields[0], []).append(exc)
                    else:
                        errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)


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
