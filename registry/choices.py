"""The registry's controlled vocabulary: codes are lower case, extended, never renamed."""

from datetime import timedelta

from django.db import models


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    COORDINATOR = "coordinator", "Clinic coordinator"
    REGISTRY_ADMIN = "registry_admin", "Registry administrator"
    # Issue 10: registry-wide, reads every clinic's clinical data, writes only medical reviews.
    SAFETY_REVIEWER = "safety_reviewer", "Safety reviewer"


# Roles held without a clinic: they see every clinic.
REGISTRY_WIDE_ROLES = (Role.REGISTRY_ADMIN, Role.SAFETY_REVIEWER)


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "X", "Other"
    UNKNOWN = "U", "Unknown"


class Site(models.TextChoices):
    KNEE = "knee", "Knee"
    HIP = "hip", "Hip"
    SHOULDER = "shoulder", "Shoulder"
    SPINE = "spine", "Spine"
    ELBOW = "elbow", "Elbow"
    ANKLE = "ankle", "Ankle"
    HAND_WRIST = "hand_wrist", "Hand / wrist"
    OTHER = "other", "Other"


class Laterality(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    BILATERAL = "bilateral", "Bilateral"
    NOT_APPLICABLE = "n/a", "Not applicable"


class Target(models.TextChoices):
    INTRA_ARTICULAR = "intra_articular", "Intra-articular"
    DISC = "disc", "Intervertebral disc"
    FACET = "facet", "Facet joint"
    TENDON = "tendon", "Tendon"
    LIGAMENT = "ligament", "Ligament"
    BONE = "bone", "Bone / subchondral"
    OTHER = "other", "Other"


class CellSource(models.TextChoices):
    AUTOLOGOUS = "autologous", "Autologous"
    ALLOGENEIC = "allogeneic", "Allogeneic"


class CellType(models.TextChoices):
    BMAC = "bmac", "Bone marrow aspirate concentrate"
    ADIPOSE_SVF = "adipose_svf", "Adipose stromal vascular fraction"
    BM_MSC_EXPANDED = "bm_msc_expanded", "Bone marrow MSC, culture expanded"
    ADIPOSE_MSC_EXPANDED = "adipose_msc_expanded", "Adipose MSC, culture expanded"
    UMBILICAL_CORD_MSC = "umbilical_cord_msc", "Umbilical cord MSC"
    AMNIOTIC = "amniotic", "Amniotic"
    OTHER = "other", "Other"


# Donor-derived products: a patient cannot be their own source.
ALLOGENEIC_ONLY_CELL_TYPES = (CellType.UMBILICAL_CORD_MSC, CellType.AMNIOTIC)


class Processing(models.TextChoices):
    MINIMALLY_MANIPULATED = "minimally_manipulated", "Minimally manipulated"
    CULTURE_EXPANDED = "culture_expanded", "Culture expanded"


class Carrier(models.TextChoices):
    SALINE = "saline", "Saline"
    PLATELET_LYSATE = "platelet_lysate", "Platelet lysate"
    HYALURONIC_ACID = "hyaluronic_acid", "Hyaluronic acid"
    PLASMA_LYTE = "plasma_lyte", "Plasma-Lyte"
    OTHER = "other", "Other"


class Guidance(models.TextChoices):
    ULTRASOUND = "ultrasound", "Ultrasound"
    FLUOROSCOPY = "fluoroscopy", "Fluoroscopy"
    LANDMARK = "landmark", "Landmark"


class Visit(models.TextChoices):
    DAY_2 = "day_2", "Day 2"
    WEEK_1 = "week_1", "Week 1"
    MONTH_1 = "month_1", "Month 1"
    MONTH_3 = "month_3", "Month 3"
    MONTH_6 = "month_6", "Month 6"
    YEAR_1 = "year_1", "Year 1"
    YEAR_2 = "year_2", "Year 2"
    YEAR_3 = "year_3", "Year 3"
    YEAR_4 = "year_4", "Year 4"
    YEAR_5 = "year_5", "Year 5"


class ContactMethod(models.TextChoices):
    IN_PERSON = "in_person", "In person"
    PHONE = "phone", "Telephone"
    VIDEO = "video", "Video"
    QUESTIONNAIRE = "questionnaire", "Questionnaire"
    RECORDS = "records", "Medical records"


class ContactOutcome(models.TextChoices):
    """What an attempt to reach a patient for an overdue visit gave (logged per visit)."""

    NO_ANSWER = "no_answer", "No answer"
    MESSAGE_LEFT = "message_left", "Message left"
    WRONG_CONTACT = "wrong_contact", "Wrong or disconnected contact details"
    DECLINED = "declined", "Reached, declined the visit"
    REACHED = "reached", "Reached, visit arranged"


# Visit label -> (days after the procedure it is due, days early allowed, days late allowed).
# Windows widen with distance so long-term visits stay attainable.
VISIT_SCHEDULE: dict[str, tuple[int, int, int]] = {
    Visit.DAY_2: (2, 1, 2),
    Visit.WEEK_1: (7, 2, 3),
    Visit.MONTH_1: (30, 7, 14),
    Visit.MONTH_3: (91, 14, 28),
    Visit.MONTH_6: (182, 28, 28),
    Visit.YEAR_1: (365, 30, 60),
    Visit.YEAR_2: (730, 60, 60),
    Visit.YEAR_3: (1095, 60, 60),
    Visit.YEAR_4: (1461, 60, 60),
    Visit.YEAR_5: (1826, 60, 60),
}


def visit_window(visit: str, due_on):
    """Return (window_start, window_end) around a visit's due date."""
    _, early, late = VISIT_SCHEDULE[visit]
    return due_on - timedelta(days=early), due_on + timedelta(days=late)
