"""Incidence vocabulary: strata, outcomes, interval methods, run states, horizons."""

from __future__ import annotations

from django.db import models

from events.choices import Category


class Stratum(models.TextChoices):
    SITE = "site", "Anatomical site"
    CELL_TYPE = "cell_type", "Cell type"
    CELL_SOURCE = "cell_source", "Cell source"
    CLINIC = "clinic", "Clinic (code)"
    COUNTRY = "country", "Country"
    SEX = "sex", "Sex"
    AGE_BAND = "age_band", "Age band at procedure"
    YEAR = "year", "Calendar year of procedure"


class CIMethod(models.TextChoices):
    WILSON = "wilson", "Wilson score"
    CLOPPER_PEARSON = "clopper-pearson", "Clopper-Pearson (exact)"


class Unit(models.TextChoices):
    PROCEDURE = "procedure", "Procedure (time zero: the procedure)"
    PATIENT = "patient", "Patient (time zero: the first procedure)"


class WindowsMode(models.TextChoices):
    OPEN = "open", "Every window open (day 0 to the end of follow-up)"
    REGISTRY = "registry", "The registry's outcome definitions (risk windows)"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Trigger(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    BEAT = "beat", "Nightly schedule"
    COMMAND = "command", "Command line"


# Outcomes beyond the categories: every counting event, serious ones, CTCAE grade >= 3.
OUTCOME_ANY = "any"
OUTCOME_SERIOUS = "serious"
OUTCOME_GRADE_3_PLUS = "grade_3_plus"
OUTCOMES: tuple[str, ...] = (OUTCOME_ANY, OUTCOME_SERIOUS, OUTCOME_GRADE_3_PLUS, *Category.values)
OUTCOME_LABELS: dict[str, str] = {
    OUTCOME_ANY: "Any adverse event",
    OUTCOME_SERIOUS: "Serious adverse event",
    OUTCOME_GRADE_3_PLUS: "CTCAE grade 3 or higher",
    **dict(Category.choices),
}

DEFAULT_STRATA: tuple[str, ...] = (Stratum.SITE, Stratum.CELL_TYPE)

# Age at procedure = calendar year of the procedure - birth year (only years are stored).
# (label, lowest age, highest age or None); every age falls in exactly one band.
AGE_BANDS: tuple[tuple[str, int | None, int | None], ...] = (
    ("<40", None, 39),
    ("40-49", 40, 49),
    ("50-59", 50, 59),
    ("60-69", 60, 69),
    ("70-79", 70, 79),
    ("80+", 80, None),
)

# Kaplan-Meier horizons in days after the procedure, inclusive (DESIGN.md 2).
HORIZONS: tuple[tuple[str, int], ...] = (("30d", 30), ("1y", 365), ("2y", 730), ("5y", 1826))
KM_MAX_DAY = max(days for _, days in HORIZONS)
AJ_COLUMNS: tuple[str, ...] = tuple(f"aj_cuminc_{label}" for label, _ in HORIZONS)

# Bands of days since the start of the risk window for the Mantel-Haenszel signal screen (DESIGN 2b).
SIGNAL_BANDS: tuple[tuple[int, int | None], ...] = ((0, 30), (30, 365), (365, 1826), (1826, None))

# The value a stratum column carries on a margin (total) row.
MARGIN = "ALL"


class ExportKind(models.TextChoices):
    RUN_CSV = "run_csv", "Incidence run, CSV"
    RUN_XLSX = "run_xlsx", "Incidence run, XLSX workbook"
    RUN_PDF = "run_pdf", "Incidence run, PDF safety report"
    LINE_LISTING_CSV = "line_listing_csv", "Adverse-event line listing, limited data set, CSV"
    DEIDENTIFIED_LISTING_CSV = "deidentified_csv", "Adverse-event line listing, de-identified, CSV"
    FHIR_BUNDLE = "fhir_bundle", "Adverse events, FHIR R4 Bundle (limited data set)"
    OVERDUE_CSV = "overdue_csv", "Overdue follow-up visits, CSV"


# Exports that carry exact dates, clinics or free text (a limited data set): the export log must
# record the data-use purpose the administrator gave for them.
LIMITED_DATA_SET_KINDS = (ExportKind.LINE_LISTING_CSV, ExportKind.FHIR_BUNDLE)

# The Celery name of the task that computes a run (reports.tasks registers it; services publish by it).
INCIDENCE_RUN_TASK = "reports.incidence_run"
