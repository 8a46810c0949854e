"""The registry's outcome definitions as they stand now: one current version per outcome code (DESIGN 2b).

A definition says which events qualify and the risk window after time zero (start day s,
end day e or open). Definitions are versioned and append-only (reports.models.OutcomeDefinition):
the current definition of a code is its highest stored version. A run started with the
registry's windows copies ``freeze()`` into the run, so recomputing it later gives the same
numbers whatever was edited since.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections

from reports.choices import (
    OUTCOME_ANY,
    OUTCOME_GRADE_3_PLUS,
    OUTCOME_LABELS,
    OUTCOME_SERIOUS,
    OUTCOMES,
)
from reports.models import OutcomeDefinition

# The defaults, after the patient guide's timelines (DESIGN 2b): (start day, end day or None = open).
# Migration reports 0006 stored them as version 1; restore_defaults() stores them again for a code
# left without any version (a test database flushed between tests).
DEFAULT_WINDOWS: dict[str, tuple[int, int | None]] = {
    "injection_site_reaction": (0, 7),
    "systemic_reaction": (0, 7),
    "allergic_reaction": (0, 30),
    "neurological": (0, 30),
    "infection": (0, 90),
    "immune_reaction": (0, 90),
    "thromboembolic": (0, 90),
    "ectopic_tissue": (0, None),
    "neoplasm": (180, None),
    "other": (0, None),
    OUTCOME_ANY: (0, None),
    OUTCOME_SERIOUS: (0, None),
    OUTCOME_GRADE_3_PLUS: (0, None),
}

# The fields of a frozen definition (IncidenceRun.outcome_definitions), in this order.
FROZEN_KEYS: tuple[str, ...] = ("code", "label", "qualifies", "window_start_day", "window_end_day", "version")


def _default(code: str, *, version: int) -> OutcomeDefinition:
    start, end = DEFAULT_WINDOWS[code]
    return OutcomeDefinition(
        code=code,
        label=OUTCOME_LABELS[code],
        qualifies=code,
        window_start_day=start,
        window_end_day=end,
        version=version,
        note="Default, after the patient guide's timelines.",
    )


def current_definitions() -> list[OutcomeDefinition]:
    """Return the current definition of every outcome, in the canonical order of reports.choices.OUTCOMES.

    The current definition of a code is its highest stored version. A code with no stored
    version at all (possible only after the table was emptied by hand or by a test-database
    flush) gets the built-in default, unsaved, as version 0.
    """
    stored = {d.code: d for d in OutcomeDefinition.objects.order_by("code", "-version").distinct("code")}
    return [stored[code] if code in stored else _default(code, version=0) for code in OUTCOMES]


def current_windows() -> dict[str, tuple[int, int | None]]:
    """Return {outcome code: (window start day, window end day or None for open)} of the current definitions."""
    return {d.code: (d.window_start_day, d.window_end_day) for d in current_definitions()}


def frozen(definition: OutcomeDefinition) -> dict:
    """Return ``definition`` as a run stores it: JSON-ready, the keys of FROZEN_KEYS."""
    return {key: getattr(definition, key) for key in FROZEN_KEYS}


def freeze() -> list[dict]:
    """Return the current definitions, JSON-ready, in canonical outcome order (see FROZEN_KEYS)."""
    return [frozen(d) for d in current_definitions()]


def restore_defaults(*, using: str = DEFAULT_DB_ALIAS, **_signal_kwargs) -> list[str]:
    """Store version 1 of the default definition of every code that has no stored version; return those codes.

    Meant for post_migrate (Django sends it after ``migrate`` and after the test runner
    flushes a database): a database keeps its definitions; one emptied gets the defaults back.
    Does nothing before the table exists (a migrate to an earlier state).
    """
    if OutcomeDefinition._meta.db_table not in connections[using].introspection.table_names():
        return []
    have = set(OutcomeDefinition.objects.using(using).values_list("code", flat=True).distinct())
    missing = [code for code in OUTCOMES if code not in have]
    OutcomeDefinition.objects.using(using).bulk_create([_default(code, version=1) for code in missing])
    return missing
