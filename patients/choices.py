"""Patient-report vocabulary: codes are lower case, extended, never renamed."""

from django.db import models
from django.utils.translation import gettext_lazy as _

DIARY_LAST_DAY = 7  # the diary covers day 0 (the procedure) to day 7
# Countries whose patients get Spanish by default (the clinic's country picks the language).
SPANISH_COUNTRIES = frozenset(
    {
        "ES",
        "MX",
        "AR",
        "CO",
        "CL",
        "PE",
        "VE",
        "EC",
        "GT",
        "CU",
        "BO",
        "DO",
        "HN",
        "PY",
        "SV",
        "NI",
        "CR",
        "PA",
        "UY",
        "PR",
        "GQ",
    }
)
PATIENT_LANGUAGES = ("en", "es")


# The procedure's site in the patient's words (registry.choices.Site codes; its labels are not translated).
SITE_NAMES = {
    "knee": _("knee"),
    "hip": _("hip"),
    "shoulder": _("shoulder"),
    "spine": _("spine"),
    "elbow": _("elbow"),
    "ankle": _("ankle"),
    "hand_wrist": _("hand or wrist"),
    "other": _("other site"),
}


class Swelling(models.TextChoices):
    NONE = "none", _("None")
    MILD = "mild", _("Mild")
    MODERATE = "moderate", _("Moderate")
    SEVERE = "severe", _("Severe")


class Severity(models.TextChoices):
    """How bad a problem is, in the patient's words."""

    MILD = "mild", _("Mild: I can do my usual things")
    MODERATE = "moderate", _("Moderate: it limits what I can do")
    SEVERE = "severe", _("Severe: I cannot do my usual things")


class ReportKind(models.TextChoices):
    DIARY = "diary", "Diary day"
    PROBLEM = "problem", "Problem report"


class ReportStatus(models.TextChoices):
    UNCONFIRMED = "unconfirmed", "Patient-reported, unconfirmed"
    CONFIRMED = "confirmed", "Confirmed by a clinician"
    REJECTED = "rejected", "Rejected by a clinician"


class RedFlag(models.TextChoices):
    """The patient guide's warning signs: the patient must contact the clinic now."""

    WARMTH = "warmth_after_48h", _("Warmth at the injection site after 48 hours")
    REDNESS = "spreading_redness", _("Redness spreading after 48 hours")
    FEVER = "fever", _("Fever of 38.0 °C or more")
    DISCHARGE = "discharge", _("Discharge from the injection site")
    NEURO = "weakness_numbness", _("New weakness or numbness after a spine injection")
    PAIN = "pain_increasing", _("Severe pain getting worse after 48 hours")


class SubmissionAction(models.TextChoices):
    DIARY_CREATE = "diary_create", "Diary day sent"
    DIARY_UPDATE = "diary_update", "Diary day changed"
    PROBLEM_CREATE = "problem_create", "Problem reported"
