"""Adverse-event vocabulary: codes are lower case, extended, never renamed."""

from django.db import models


class Category(models.TextChoices):
    INJECTION_SITE_REACTION = "injection_site_reaction", "Injection-site reaction"
    SYSTEMIC_REACTION = "systemic_reaction", "Systemic reaction (flu-like, fatigue)"
    INFECTION = "infection", "Infection"
    ECTOPIC_TISSUE = "ectopic_tissue", "Ectopic / unwanted tissue formation"
    IMMUNE_REACTION = "immune_reaction", "Immune reaction"
    ALLERGIC_REACTION = "allergic_reaction", "Allergic reaction"
    NEOPLASM = "neoplasm", "Neoplasm"
    NEUROLOGICAL = "neurological", "Neurological complication"
    THROMBOEMBOLIC = "thromboembolic", "Thromboembolic event"
    OTHER = "other", "Other"


class Grade(models.IntegerChoices):
    MILD = 1, "1 - Mild"
    MODERATE = 2, "2 - Moderate"
    SEVERE = 3, "3 - Severe"
    LIFE_THREATENING = 4, "4 - Life-threatening"
    DEATH = 5, "5 - Death"


class Causality(models.TextChoices):
    """WHO-UMC causality categories."""

    CERTAIN = "certain", "Certain"
    PROBABLE = "probable", "Probable / likely"
    POSSIBLE = "possible", "Possible"
    UNLIKELY = "unlikely", "Unlikely"
    UNASSESSABLE = "unassessable", "Unassessable / unclassifiable"


class Expectedness(models.TextChoices):
    EXPECTED = "expected", "Expected"
    UNEXPECTED = "unexpected", "Unexpected"


class Outcome(models.TextChoices):
    RECOVERED = "recovered", "Recovered / resolved"
    RECOVERING = "recovering", "Recovering / resolving"
    NOT_RECOVERED = "not_recovered", "Not recovered / not resolved"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae", "Recovered with sequelae"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"


class ActionTaken(models.TextChoices):
    NONE = "none", "None"
    MEDICATION = "medication", "Medication"
    ASPIRATION = "aspiration", "Joint aspiration / drainage"
    HOSPITALISATION = "hospitalisation", "Hospitalisation"
    SURGERY = "surgery", "Surgery"
    OTHER = "other", "Other"


# ICH E2B seriousness criteria: import code -> model field.
SERIOUS_CRITERIA = {
    "death": "serious_death",
    "life_threatening": "serious_life_threatening",
    "hospitalisation": "serious_hospitalisation",
    "disability": "serious_disability",
    "congenital_anomaly": "serious_congenital_anomaly",
    "medically_important": "serious_medically_important",
}


class CaseStatus(models.TextChoices):
    """Issue 10: a case is open until followed up to its end."""

    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ReporterType(models.TextChoices):
    """Who first reported the event (ICH E2B primary source, simplified)."""

    CLINICIAN = "clinician", "Clinician / health professional"
    PATIENT = "patient", "Patient (self-reported, confirmed by a clinician)"
    OTHER = "other", "Other"


# Fields a follow-up report may change on its event (issue 10), applied through events.services.
FOLLOW_UP_FIELDS = (
    "outcome",
    "resolved_on",
    "grade",
    "serious",
    *SERIOUS_CRITERIA.values(),
    "causality_procedure",
    "causality_product",
    "expectedness",
    "communicable_disease",
    "action_taken",
    "case_status",
)
