"""Return the registry's data rules by code: one catalogue of field-level messages.

Every rule has a code, the field its message belongs to, and the message. The domain
apps declare theirs with rule() (registry.rules, events.rules); clean(), the services,
the importer and the admin show the same text, and the database backs the rule under
the same name: a CheckConstraint named after the code, or a trigger raising
check_violation with CONSTRAINT = the code (trigger_raise()). core.integrity maps a
refusal by the database back to the rule's field and message through this catalogue,
so a write that races past the Python checks still gets a field-level answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True, slots=True)
class Rule:
    """One data rule: its code (also its database constraint's name), field and message."""

    code: str
    field: str
    message: str
    # Named values the caller may know ("performed on {date}"); shown in brackets when given.
    detail: str = ""

    def text(self, **values) -> str:
        """Return the message, with the detail filled in when its values are given."""
        if values and self.detail:
            return f"{self.message.removesuffix('.')} ({self.detail.format(**values)})."
        return self.message

    def error(self, field: str | None = None, **values) -> dict[str, str]:
        """Return {field: message} for this rule (``field`` overrides the rule's own)."""
        return {field or self.field: self.text(**values)}


CATALOGUE: dict[str, Rule] = {}


def rule(code: str, field: str, message: str, detail: str = "") -> Rule:
    """Return a new rule, entered in the catalogue under ``code`` (which must be new)."""
    if code in CATALOGUE:
        raise ImproperlyConfigured(f"Rule {code!r} is declared twice.")
    CATALOGUE[code] = found = Rule(code, field, message, detail)
    return found


def add(errors: dict[str, str], broken: Rule, field: str | None = None, **values) -> None:
    """Add ``broken``'s message to ``errors`` unless its field already has one (the first rule wins)."""
    for name, message in broken.error(field, **values).items():
        errors.setdefault(name, message)


def trigger_raise(broken: Rule) -> str:
    """Return the PL/pgSQL statement a trigger runs to refuse a row under ``broken``'s code and message."""
    message = broken.message.replace("'", "''")
    return f"RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = '{broken.code}', MESSAGE = '{message}';"


# Every retractable table (core.models.Retractable) backs this rule with a CHECK named
# "<table prefix>_retraction_has_reason" (core.models.retraction_has_reason).
RETRACTION_REASON = rule("retraction_has_reason", "retraction_reason", "A retraction needs a reason.")


def rule_of_constraint(name: str) -> Rule | None:
    """Return the rule a database constraint or trigger named ``name`` backs, or None."""
    if name.endswith("_" + RETRACTION_REASON.code):
        return RETRACTION_REASON
    return CATALOGUE.get(name)
