"""Safety-reporting vocabulary: codes are lower case, extended, never renamed."""

from django.db import models

from events.choices import SERIOUS_CRITERIA, ActionTaken, Causality

# The Celery task the beat entry "safety-due-report-reminders" (config/settings.py) publishes.
REMINDER_TASK = "safety.send_due_report_reminders"
REEVALUATE_TASK = "safety.reevaluate_open_cases"  # after a rule is added, changed or activated
# A reminder goes out this many calendar days before a due report's due date.
REMINDER_DAYS_BEFORE = 2
# Figures: an open case aware for longer than this without a follow-up is flagged.
STALE_CASE_DAYS = 30

# "At least possible" (WHO-UMC): these count as related; unlikely, unassessable and blank do not.
RELATED_CAUSALITY = frozenset({Causality.CERTAIN, Causality.PROBABLE, Causality.POSSIBLE})
# Stronger first: the case's causality is the strongest of the site's and the reviewer's.
CAUSALITY_RANK = {
    Causality.CERTAIN: 5,
    Causality.PROBABLE: 4,
    Causality.POSSIBLE: 3,
    Causality.UNLIKELY: 2,
    Causality.UNASSESSABLE: 1,
    "": 0,
}

# A medical or surgical intervention, hospitalisation included (21 CFR 1271.350(a)(1)(iv)).
INTERVENTION_ACTIONS = frozenset(
    {ActionTaken.MEDICATION, ActionTaken.ASPIRATION, ActionTaken.HOSPITALISATION, ActionTaken.SURGERY}
)
# The qualifying outcomes a rule may ask for (any of them): the ICH seriousness criteria, plus the
# intervention the HCT/P rule counts.
INTERVENTION = "intervention"
QUALIFYING_OUTCOMES = {
    **{key: key.replace("_", " ") for key in SERIOUS_CRITERIA},
    INTERVENTION: "medical or surgical intervention (hospitalisation included)",
}


class ReportForm(models.TextChoices):
    CIOMS_I = "cioms_i", "CIOMS I"
    FDA_3500A = "fda_3500a", "Form FDA 3500A (MedWatch)"
    OTHER = "other", "Other (named by the recipient)"


class DueReportStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUBMITTED = "submitted", "Submitted"
    WITHDRAWN = "withdrawn", "Withdrawn"


class StartedBy(models.TextChoices):
    """What started a due report's clock."""

    INITIAL = "initial", "Initial report"
    FOLLOW_UP = "follow_up", "Follow-up report"
    REVIEW = "review", "Medical review"
