"""Turn the database's own refusals into the same field-level errors validation gives."""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction

from core.rules import rule_of_constraint

UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"


def _diag(exc: IntegrityError):
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None), getattr(getattr(cause, "diag", None), "constraint_name", None)


def save_or_field_error(instance: models.Model, **save_kwargs) -> None:
    """Save ``instance``; a unique or check violation becomes a ValidationError.

    full_clean() and the services already checked the same rules, so this only fires when
    another transaction won a race in between (two clients creating the same event id at
    the same instant, a death date entered while a later procedure is saved): the loser
    gets a 400 naming the field, with the rule's message from core.rules, not a 500.
    """
    try:
        with transaction.atomic():
            instance.save(**save_kwargs)
    except IntegrityError as exc:
        sqlstate, constraint = _diag(exc)
        opts = instance._meta
        if sqlstate == UNIQUE_VIOLATION:
            for field in opts.concrete_fields:
                if field.unique and constraint == f"{opts.db_table}_{field.column}_key":
                    raise ValidationError(
                        {field.name: f"{str(field.verbose_name).capitalize()} already exists."}, code="unique"
                    ) from exc
            raise ValidationError({NON_FIELD_ERRORS: "This record already exists."}, code="unique") from exc
        if sqlstate == CHECK_VIOLATION:
            # A CheckConstraint or a trigger named after a catalogued rule: that rule's field and message.
            broken = rule_of_constraint(constraint or "")
            if broken is not None:
                raise ValidationError(broken.error(), code=broken.code) from exc
            message = str(getattr(exc.__cause__.diag, "message_primary", "") or exc)
            raise ValidationError({NON_FIELD_ERRORS: message}, code="invalid") from exc
        raise
