"""Demo data for a fresh machine: clinics, staff, patients, procedures, follow-up, adverse events.

Everything is drawn from a seeded generator (one per patient, so adding patients
never reshuffles the others) and written through the services, so the demo obeys
the same rules and leaves the same audit trail as real data entry. Event rates
follow DESIGN.md section 1.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pghistory
import pghistory.models
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.urls import reverse

from core import dates
from events import selectors as event_selectors
from events import services as event_services
from events.choices import SERIOUS_CRITERIA, Category, Outcome
from events.models import AdverseEvent
from patients import services as patient_services
from registry import services
from registry.choices import (
    ALLOGENEIC_ONLY_CELL_TYPES,
    VISIT_SCHEDULE,
    CellSource,
    CellType,
    Processing,
    Role,
    Sex,
    Site,
    Target,
)
from registry.models import Clinic, Membership, Patient, Procedure
from safety import services as safety_services
from safety.choices import DueReportStatus
from safety.models import DueReport

SEED = 20240611
DEFAULT_PATIENTS = 360
DEMO_PASSWORD = "knee-cartilage-demo-42"  # noqa: S105 - printed on purpose: demo logins only
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_YEAR = 365


@dataclass(frozen=True)
class ClinicSpec:
    code: str
    name: str
    country: str
    city: str
    gmp: bool
    accreditation_body: str
    accreditation_days: int | None  # expiry relative to today; negative means lapsed
    share: float  # of the demo patients
    cell_types: dict[str, int]  # cell type -> weight


CLINICS = (
    ClinicSpec("ES-MAD-01", "Clinica Regenerativa Madrid", "ES", "Madrid", True, "AEMPS", 420, 0.24,
               {CellType.BMAC: 4, CellType.ADIPOSE_SVF: 3, CellType.BM_MSC_EXPANDED: 2}),
    ClinicSpec("DE-BER-01", "Zentrum fuer Zelltherapie Berlin", "DE", "Berlin", True, "Paul-Ehrlich-Institut", 700,
               0.20, {CellType.BMAC: 3, CellType.ADIPOSE_SVF: 2, CellType.ADIPOSE_MSC_EXPANDED: 2}),
    ClinicSpec("US-HOU-01", "Gulf Coast Regenerative Orthopedics", "US", "Houston", False, "AABB", 200, 0.26,
               {CellType.BMAC: 4, CellType.ADIPOSE_SVF: 2, CellType.AMNIOTIC: 2, CellType.UMBILICAL_CORD_MSC: 2}),
    ClinicSpec("MX-TIJ-01", "Centro de Terapia Celular Tijuana", "MX", "Tijuana", False, "COFEPRIS", -90, 0.16,
               {CellType.UMBILICAL_CORD_MSC: 4, CellType.ADIPOSE_SVF: 2, CellType.BM_MSC_EXPANDED: 1}),
    ClinicSpec("KR-SEL-01", "Seoul Cell Therapy Clinic", "KR", "Seoul", True, "MFDS", 540, 0.14,
               {CellType.ADIPOSE_MSC_EXPANDED: 3, CellType.UMBILICAL_CORD_MSC: 2, CellType.BMAC: 2}),
)  # fmt: skip

# username, role, clinic code (None: every clinic)
USERS = (
    ("clinician_madrid", Role.CLINICIAN, "ES-MAD-01"),
    ("clinician_berlin", Role.CLINICIAN, "DE-BER-01"),
    ("coordinator_madrid", Role.COORDINATOR, "ES-MAD-01"),
    ("registry_admin", Role.REGISTRY_ADMIN, None),
    ("safety_reviewer", Role.SAFETY_REVIEWER, None),
)
# Issue 10/12: who gets the due-report and red-flag emails, and the number patients are told to call.
DEMO_EMAIL_DOMAIN = "demo.example.org"
PHONES = {
    "ES-MAD-01": "+34 910 000 101",
    "DE-BER-01": "+49 30 0000 0101",
    "US-HOU-01": "+1 713 555 0101",
    "MX-TIJ-01": "+52 664 000 0101",
    "KR-SEL-01": "+82 2 0000 0101",
}

SEXES = {Sex.FEMALE: 54, Sex.MALE: 44, Sex.OTHER: 1, Sex.UNKNOWN: 1}
SITES = {Site.KNEE: 45, Site.HIP: 15, Site.SHOULDER: 14, Site.SPINE: 10, Site.ANKLE: 6, Site.ELBOW: 4,
         Site.HAND_WRIST: 3, Site.OTHER: 3}  # fmt: skip
# site -> (targets with weights, indications, volume range mL)
SITE_DETAILS = {
    Site.KNEE: ({Target.INTRA_ARTICULAR: 85, Target.BONE: 10, Target.LIGAMENT: 5},
                ("Knee osteoarthritis, KL grade 2", "Knee osteoarthritis, KL grade 3", "Degenerative meniscal tear",
                 "Focal chondral defect"), (3, 10)),
    Site.HIP: ({Target.INTRA_ARTICULAR: 85, Target.BONE: 15},
               ("Hip osteoarthritis", "Avascular necrosis of the femoral head", "Labral tear"), (3, 8)),
    Site.SHOULDER: ({Target.TENDON: 55, Target.INTRA_ARTICULAR: 45},
                    ("Partial-thickness rotator cuff tear", "Glenohumeral osteoarthritis", "Rotator cuff tendinopathy"),
                    (2, 6)),
    Site.SPINE: ({Target.DISC: 60, Target.FACET: 40},
                 ("Discogenic low back pain", "Lumbar facet arthropathy", "Degenerative disc disease L4-L5"), (1, 2)),
    Site.ANKLE: ({Target.INTRA_ARTICULAR: 60, Target.TENDON: 40}, ("Ankle osteoarthritis", "Achilles tendinopathy"),
                 (1, 4)),
    Site.ELBOW: ({Target.TENDON: 80, Target.INTRA_ARTICULAR: 20}, ("Lateral epicondylitis", "Elbow osteoarthritis"),
                 (1, 3)),
    Site.HAND_WRIST: ({Target.INTRA_ARTICULAR: 100}, ("Thumb CMC osteoarthritis", "Wrist osteoarthritis"), (0.5, 2)),
    Site.OTHER: ({Target.TENDON: 50, Target.OTHER: 50}, ("Plantar fasciitis", "Gluteal tendinopathy"), (2, 5)),
}  # fmt: skip
# cell type -> (processing, dose range in million cells or None when products are not counted)
CELL_DETAILS = {
    CellType.BMAC: (Processing.MINIMALLY_MANIPULATED, (20, 200)),
    CellType.ADIPOSE_SVF: (Processing.MINIMALLY_MANIPULATED, (10, 100)),
    CellType.BM_MSC_EXPANDED: (Processing.CULTURE_EXPANDED, (10, 100)),
    CellType.ADIPOSE_MSC_EXPANDED: (Processing.CULTURE_EXPANDED, (10, 100)),
    CellType.UMBILICAL_CORD_MSC: (Processing.CULTURE_EXPANDED, (10, 100)),
    CellType.AMNIOTIC: (Processing.MINIMALLY_MANIPULATED, None),
}
AUTOLOGOUS_HARVEST = (CellType.BMAC, CellType.ADIPOSE_SVF, CellType.BM_MSC_EXPANDED, CellType.ADIPOSE_MSC_EXPANDED)
# Share of follow-up visits completed among patients still followed (most early, fewer later).
VISIT_COMPLETION = {"day_2": 0.95, "week_1": 0.92, "month_1": 0.9, "month_3": 0.86, "month_6": 0.8, "year_1": 0.74,
                    "year_2": 0.66, "year_3": 0.6, "year_4": 0.55, "year_5": 0.5}  # fmt: skip
VISIT_CONTACT = {"day_2": {"phone": 9, "in_person": 1}, "week_1": {"in_person": 6, "phone": 4},
                 "month_1": {"in_person": 8, "phone": 2}, "month_3": {"in_person": 7, "video": 2, "phone": 1},
                 "month_6": {"in_person": 6, "video": 2, "questionnaire": 2}}  # fmt: skip
LATE_CONTACT = {"phone": 4, "questionnaire": 3, "in_person": 2, "video": 1, "records": 1}


@dataclass(frozen=True)
class EventTemplate:
    terms: tuple[str, ...]
    onset: tuple[int, int]  # days after the procedure
    grades: dict[int, int]
    resolve: tuple[int, int] | None  # days to resolution; None: persists
    causality_procedure: tuple[str, ...]
    causality_product: tuple[str, ...]
    expected: bool
    actions: dict[str, int]


TEMPLATES = {
    Category.INJECTION_SITE_REACTION: EventTemplate(
        ("Injection site pain", "Injection site swelling", "Injection site bruising", "Post-injection flare"),
        (0, 1), {1: 78, 2: 21, 3: 1}, (1, 10), ("certain", "probable"), ("possible", "unlikely"), True,
        {"none": 55, "medication": 40, "aspiration": 5}),
    Category.SYSTEMIC_REACTION: EventTemplate(
        ("Flu-like symptoms", "Fatigue", "Low-grade fever", "Myalgia", "Headache"),
        (0, 2), {1: 75, 2: 25}, (1, 6), ("possible", "probable"), ("possible", "probable"), True,
        {"none": 60, "medication": 40}),
    Category.INFECTION: EventTemplate(
        ("Cellulitis at injection site", "Superficial injection-site infection", "Septic arthritis"),
        (3, 12), {2: 55, 3: 40, 4: 5}, (10, 60), ("probable", "certain"), ("possible", "unlikely"), True,
        {"medication": 50, "aspiration": 20, "hospitalisation": 20, "surgery": 10}),
    Category.ECTOPIC_TISSUE: EventTemplate(
        ("Intra-articular calcification", "Heterotopic ossification", "Fibrotic scar tissue at injection site"),
        (60, 720), {1: 60, 2: 35, 3: 5}, None, ("possible",), ("probable", "possible"), False,
        {"none": 80, "surgery": 20}),
    Category.IMMUNE_REACTION: EventTemplate(
        ("Inflammatory synovitis", "Sterile inflammatory effusion", "Fever with raised CRP"),
        (1, 14), {1: 40, 2: 50, 3: 10}, (3, 30), ("possible",), ("probable", "possible"), True,
        {"medication": 60, "aspiration": 30, "none": 10}),
    Category.ALLERGIC_REACTION: EventTemplate(
        ("Urticaria", "Pruritic rash", "Angioedema", "Anaphylactic reaction"),
        (0, 1), {1: 55, 2: 35, 3: 7, 4: 3}, (1, 7), ("possible",), ("probable", "possible"), False,
        {"medication": 85, "none": 15}),
    Category.NEOPLASM: EventTemplate(
        ("Lipoma at injection site", "Soft-tissue mass, benign on biopsy", "Non-Hodgkin lymphoma"),
        (365, 1800), {2: 50, 3: 50}, None, ("unlikely", "unassessable"), ("unlikely", "unassessable"), False,
        {"surgery": 60, "other": 40}),
    Category.NEUROLOGICAL: EventTemplate(
        ("Transient radicular pain", "Lower-limb paraesthesia", "Post-dural puncture headache", "Foot drop"),
        (0, 3), {1: 50, 2: 40, 3: 10}, (2, 60), ("probable", "possible"), ("unlikely",), True,
        {"medication": 60, "none": 40}),
    Category.THROMBOEMBOLIC: EventTemplate(
        ("Deep vein thrombosis", "Superficial thrombophlebitis"),
        (3, 28), {2: 70, 3: 30}, (30, 120), ("possible",), ("unlikely",), False, {"medication": 100}),
    Category.OTHER: EventTemplate(
        ("Vasovagal syncope", "Harvest-site pain", "Harvest-site haematoma"),
        (0, 1), {1: 85, 2: 15}, (0, 7), ("certain", "probable"), ("unlikely",), True, {"none": 70, "medication": 30}),
}  # fmt: skip
FOLLOW_UP_NARRATIVES = {
    True: "Follow-up call: the patient reports the event has ended; no further treatment. Case closed.",
    False: "Follow-up call: symptoms persist; the patient is still under the clinic's care.",
}
UNRELATED_DEATHS = ("Myocardial infarction", "Ischaemic stroke", "Sudden cardiac death", "Road traffic accident")
RETRACTIONS = (
    ("Injection site pain", "Duplicate: the same reaction was reported at the day-2 call and at the week-1 visit."),
    ("Joint pain", "Pain pre-dated the procedure (baseline symptom); not an adverse event."),
    ("Flu-like symptoms", "Entered on the wrong patient; re-entered on the correct record."),
    ("Injection site swelling", "Reporter withdrew the report: swelling was the expected post-injection volume."),
)


@dataclass
class DemoSummary:
    """What one load created (all zero when the demo data was already there)."""

    created: Counter = field(default_factory=Counter)
    credentials: list[tuple[str, str, str, bool]] = field(default_factory=list)  # user, role, clinic, new
    patient_link: str = ""  # the path of a patient link issued by this load (its token is shown once)

    @property
    def nothing_created(self) -> bool:
        return not any(self.created.values())


def is_demo_user(user) -> bool:
    """Return True when ``user`` is one of the demo users (settings.OTP_DEMO_USER_CALLABLE)."""
    return user.get_username() in {username for username, _role, _clinic in USERS}


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _code(rng: random.Random, prefix: str, n: int = 10) -> str:
    return prefix + "".join(rng.choice(_ALPHABET) for _ in range(n))


def _day(start: dt.date, days: int) -> dt.date:
    return start + dt.timedelta(days=days)


def demo_clinics_ensure(*, today: dt.date, summary: DemoSummary) -> dict[str, Clinic]:
    """Return the demo clinics by code, creating those missing."""
    clinics = {c.code: c for c in Clinic.objects.filter(code__in=[s.code for s in CLINICS])}
    for spec in CLINICS:
        if spec.code in clinics:
            continue
        expires = _day(today, spec.accreditation_days) if spec.accreditation_days is not None else None
        clinic = Clinic(code=spec.code, name=spec.name, country=spec.country, city=spec.city, gmp_certified=spec.gmp,
                        accreditation_body=spec.accreditation_body, accreditation_expires_on=expires,
                        phone=PHONES[spec.code])  # fmt: skip
        clinics[spec.code] = services.clinic_save(actor=None, clinic=clinic)
        summary.created["clinics"] += 1
    return clinics


def demo_users_ensure(*, clinics: dict[str, Clinic], summary: DemoSummary) -> dict[str, AbstractBaseUser]:
    """Return the demo users by username, creating missing users and memberships.

    An existing user keeps its password: the command never resets a password it did not set.
    """
    User = get_user_model()
    users = {}
    for username, role, clinic_code in USERS:
        user = User.objects.filter(username=username).first()
        is_new = user is None
        if is_new:
            user = User(username=username, email=f"{username}@{DEMO_EMAIL_DOMAIN}")
            validate_password(DEMO_PASSWORD, user)
            user.set_password(DEMO_PASSWORD)
            user.save()
            summary.created["users"] += 1
        clinic = clinics[clinic_code] if clinic_code else None
        if not Membership.objects.filter(user=user, role=role, clinic=clinic).exists():
            services.membership_create(user=user, role=role, clinic=clinic)
            summary.created["memberships"] += 1
        users[username] = user
        summary.credentials.append((username, Role(role).label, clinic_code or "all clinics", is_new))
    return users


def _procedure(rng: random.Random, *, patient: Patient, spec: ClinicSpec, performed_on: dt.date) -> Procedure:
    site = _pick(rng, SITES)
    targets, indications, (vol_lo, vol_hi) = SITE_DETAILS[site]
    cell_type = _pick(rng, spec.cell_types)
    processing, doses = CELL_DETAILS[cell_type]
    donor_cells = cell_type in ALLOGENEIC_ONLY_CELL_TYPES
    some_banked = cell_type == CellType.BM_MSC_EXPANDED and rng.random() < 0.2  # banked donor MSC
    source = CellSource.ALLOGENEIC if donor_cells or some_banked else CellSource.AUTOLOGOUS
    dose = rng.uniform(*doses) * (0.25 if site == Site.SPINE else 1) if doses else None
    laterality = "n/a" if site == Site.SPINE else _pick(rng, {"left": 45, "right": 45, "bilateral": 10})
    carrier = _pick(rng, {"saline": 5, "platelet_lysate": 2, "hyaluronic_acid": 2, "plasma_lyte": 1})
    if site in (Site.SPINE, Site.HIP):
        guidance = _pick(rng, {"fluoroscopy": 7, "ultrasound": 3})
    else:
        guidance = _pick(rng, {"ultrasound": 7, "landmark": 3})
    if source == CellSource.ALLOGENEIC:
        lot = f"{cell_type[:4].upper()}-{performed_on:%Y%m}"  # donor lots are shared across patients
    else:
        lot = f"{spec.code}-{performed_on:%y%m%d}-{rng.randint(1, 9)}"
    return Procedure(
        external_id=_code(rng, "PR-"),
        patient=patient,
        clinic=patient.clinic,
        performed_on=performed_on,
        site=site,
        laterality=laterality,
        target=_pick(rng, targets),
        indication=rng.choice(indications),
        cell_source=source,
        cell_type=cell_type,
        processing=processing,
        cell_dose_millions=Decimal(f"{dose:.2f}") if dose else None,
        volume_ml=Decimal(f"{rng.uniform(vol_lo, vol_hi):.1f}"),
        carrier=carrier,
        guidance=guidance,
        product_lot=lot,
        operator=f"OP-{rng.randint(1, 4):02d}",
    )


def _complete_visits(rng: random.Random, *, procedure: Procedure, followed_until: dt.date, adherence: float) -> int:
    """Return how many of the procedure's visits were marked completed."""
    completed, missed_in_row = 0, 0
    for visit in procedure.visits.order_by("due_on"):
        jitter, chance, late_method = rng.randint(-3, 5), rng.random(), _pick(rng, LATE_CONTACT)
        on = min(max(_day(visit.due_on, jitter), visit.window_start, procedure.performed_on), visit.window_end)
        if on > followed_until or missed_in_row >= 2:  # two missed visits in a row: lost to follow-up
            break
        if chance > VISIT_COMPLETION[visit.visit] * adherence:
            missed_in_row += 1
            continue
        method = _pick(rng, VISIT_CONTACT[visit.visit]) if visit.visit in VISIT_CONTACT else late_method
        services.visit_record_completion(actor=None, visit=visit, completed_on=on, contact_method=method)
        completed, missed_in_row = completed + 1, 0
    return completed


def _event_rates(procedure: Procedure, *, gmp: bool) -> dict[str, float]:
    allogeneic = procedure.cell_source == CellSource.ALLOGENEIC
    expanded = procedure.processing == Processing.CULTURE_EXPANDED
    hyaluronic = procedure.carrier == "hyaluronic_acid"
    return {
        Category.INJECTION_SITE_REACTION: 0.62,
        Category.SYSTEMIC_REACTION: 0.2 if allogeneic or expanded else 0.12,
        Category.INFECTION: 0.01 if gmp else 0.03,
        Category.ECTOPIC_TISSUE: 0.015 if expanded else 0.004,
        Category.IMMUNE_REACTION: 0.04 if allogeneic else 0.005,
        # carrier solutions cause some of them
        Category.ALLERGIC_REACTION: 0.006 + (0.015 if allogeneic else 0) + (0.01 if hyaluronic else 0),
        Category.NEOPLASM: 0.005,
        Category.NEUROLOGICAL: 0.05 if procedure.site == Site.SPINE else 0.003,
        Category.THROMBOEMBOLIC: 0.004 if procedure.site in (Site.KNEE, Site.HIP) else 0.001,
        Category.OTHER: 0.08 if procedure.cell_type in AUTOLOGOUS_HARVEST else 0.01,
    }  # fmt: skip


def _seriousness(category: str, grade: int) -> dict[str, bool]:
    flags = dict.fromkeys(SERIOUS_CRITERIA.values(), False)
    if grade == 5:
        flags["serious_death"] = True
    elif grade == 4:
        flags["serious_life_threatening"] = flags["serious_hospitalisation"] = True
    elif category == Category.NEOPLASM:
        flags["serious_medically_important"] = True
    elif grade == 3:
        flags["serious_disability" if category == Category.ECTOPIC_TISSUE else "serious_hospitalisation"] = True
    return {"serious": any(flags.values()), **flags}


def _event(rng: random.Random, *, procedure: Procedure, category: str, observed_until: dt.date) -> AdverseEvent | None:
    """Return an unsaved event of ``category``, or None when its onset falls after follow-up ended."""
    t = TEMPLATES[category]
    onset = _day(procedure.performed_on, rng.randint(*t.onset))
    grade, term = _pick(rng, t.grades), rng.choice(t.terms)
    resolve_days, sequelae = rng.randint(*t.resolve) if t.resolve else None, rng.random() < 0.1
    causality = (rng.choice(t.causality_procedure), rng.choice(t.causality_product))
    action, reporter = _pick(rng, t.actions), _pick(rng, {"treating clinician": 6, "coordinator": 3, "patient": 1})
    if onset > observed_until:
        return None
    if category == Category.INFECTION:
        term = ("Discitis" if procedure.site == Site.SPINE else "Septic arthritis") if grade >= 3 else term
    elif category == Category.ALLERGIC_REACTION and grade == 4:
        term = "Anaphylactic reaction"
    elif category == Category.NEUROLOGICAL and procedure.site != Site.SPINE:
        term = "Transient paraesthesia"
    resolved_on = _day(onset, resolve_days) if resolve_days is not None else None
    if resolved_on is not None and resolved_on <= observed_until:
        outcome = Outcome.RECOVERED_WITH_SEQUELAE if grade >= 3 and sequelae else Outcome.RECOVERED
    else:
        resolved_on = None
        recent = (observed_until - onset).days < 60
        outcome = Outcome.RECOVERING if recent else (Outcome.NOT_RECOVERED if t.resolve is None else Outcome.UNKNOWN)
    if grade >= 3 and action == "none":
        action = "hospitalisation"
    bits = rng.getrandbits(48)
    return AdverseEvent(
        external_id=f"AE-{bits:012X}",
        procedure=procedure,
        category=category,
        term=term,
        onset_on=onset,
        # Issue 10: the clinic hears of it the same day or up to 3 days later (from the id's bits: the
        # demo's random stream, and so its registry, stays as it was).
        aware_on=min(_day(onset, bits % 4), observed_until),
        onset_estimated=t.onset[1] > 60,  # late findings are dated to the imaging or visit that found them
        grade=grade,
        **_seriousness(category, grade),
        causality_procedure=causality[0],
        causality_product=causality[1],
        expectedness="expected" if t.expected else "unexpected",
        outcome=outcome,
        resolved_on=resolved_on,
        action_taken=action,
        reporter=reporter,
    )


def _fatal_event(rng: random.Random, *, procedure: Procedure, death_date: dt.date, related: bool) -> AdverseEvent:
    onset = max(procedure.performed_on, _day(death_date, -rng.randint(0, 4)))
    seriousness = {**_seriousness(Category.OTHER, 5), "serious_hospitalisation": True}
    return AdverseEvent(
        external_id=f"AE-{rng.getrandbits(48):012X}",
        procedure=procedure,
        category=Category.THROMBOEMBOLIC if related else Category.OTHER,
        term="Pulmonary embolism" if related else rng.choice(UNRELATED_DEATHS),
        onset_on=onset,
        grade=5,
        **seriousness,
        causality_procedure="possible" if related else "unlikely",
        causality_product="unlikely",
        expectedness="unexpected",
        outcome=Outcome.FATAL,
        action_taken="hospitalisation",
        reporter="treating clinician",
        aware_on=death_date,
    )


def demo_patient_create(
    *,
    index: int,
    seed: int,
    registry_id: str,
    spec: ClinicSpec,
    clinic: Clinic,
    today: dt.date,
    retractor: AbstractBaseUser,
    summary: DemoSummary,
) -> Patient:
    """Return a new demo patient with procedures, completed visits and adverse events."""
    rng = random.Random(f"{seed}:patient:{index}")
    last_day = _day(today, -1)  # nothing is dated today: the database compares dates with Now() in UTC
    first_on = _day(today, -int(3 + (5 * _YEAR - 3) * rng.random() ** 1.3))  # clinics grew: more recent work
    second_gap, age = rng.randint(90, 720), int(rng.triangular(30, 86, 58))
    fate, fate_roll, adherence = rng.random(), rng.random(), min(1.0, rng.betavariate(8, 1.5) + 0.05)
    enrolled_on = _day(first_on, -rng.randint(0, 21))
    patient = Patient(
        registry_id=registry_id,
        clinic=clinic,
        sex=_pick(rng, SEXES),
        birth_year=first_on.year - age,
        enrolled_on=enrolled_on,
        consent_on=enrolled_on,
    )
    services.patient_save(actor=None, patient=patient)
    dates = [first_on] + ([_day(first_on, second_gap)] if rng.random() < 0.12 else [])
    dates = [d for d in dates if d <= _day(today, -3)]
    procedures = [
        services.procedure_save(actor=None, procedure=_procedure(rng, patient=patient, spec=spec, performed_on=d))
        for d in dates
    ]
    summary.created["procedures"] += len(procedures)
    summary.created["visits"] += len(VISIT_SCHEDULE) * len(procedures)
    # Fate: a few deaths (one in seven a procedure-related pulmonary embolism), some withdrawals.
    followed_until, death, related_death = last_day, None, False
    span = (last_day - dates[-1]).days
    if fate < 0.014 and span > 30:
        related_death = fate_roll < 0.15
        death = _day(dates[-1], 10 + int(fate_roll * 15) if related_death else 30 + int(fate_roll * (span - 30)))
        followed_until = death
    elif fate < 0.08 and span > 30:
        patient.withdrawn_on = _day(dates[-1], 14 + int(fate_roll * (span - 14)))
        followed_until = patient.withdrawn_on
        services.patient_save(actor=None, patient=patient)
        summary.created["withdrawals"] += 1
    for procedure in procedures:
        summary.created["visits_completed"] += _complete_visits(
            rng, procedure=procedure, followed_until=followed_until, adherence=adherence
        )
        for category, rate in _event_rates(procedure, gmp=spec.gmp).items():
            hit = rng.random() < rate
            event = _event(rng, procedure=procedure, category=category, observed_until=followed_until)
            if hit and event is not None:
                event_services.adverse_event_save(actor=None, event=event)
                summary.created[f"events:{category}"] += 1
    if death is not None:
        # As a clinic enters a death: the date with its cause first (a fatal outcome needs the date), then the event.
        fatal = _fatal_event(rng, procedure=procedures[-1], death_date=death, related=related_death)
        patient.death_date, patient.death_cause = death, fatal.term
        services.patient_save(actor=None, patient=patient)
        event_services.adverse_event_save(actor=None, event=fatal)
        summary.created[f"events:{fatal.category}"] += 1
        summary.created["deaths"] += 1
    if index % 50 == 17:  # a few mistaken reports, retracted with a reason rather than deleted
        term, reason = RETRACTIONS[(index // 50) % len(RETRACTIONS)]
        mistaken = _event(
            rng, procedure=procedures[0], category=Category.INJECTION_SITE_REACTION, observed_until=followed_until
        )
        if mistaken is not None:
            mistaken.term = term
            event_services.adverse_event_save(actor=None, event=mistaken)
            event_services.adverse_event_retract(actor=retractor, event=mistaken, reason=reason)
            summary.created["events_retracted"] += 1
    summary.created["patients"] += 1
    return patient


def demo_cases_follow_up(*, seed: int, today: dt.date, users: dict, summary: DemoSummary) -> None:
    """Follow up and review the demo's serious cases (issue 10), as a clinic and the safety reviewer would.

    Each serious case gets a follow-up call a few days after awareness (closing it when resolved)
    and a medical review: the reviewer shares the site's seriousness, calls "unassessable" causality
    possible, and judges expectedness against the reference safety information, so some cases become
    reportable on the day of the review.
    """
    rng = random.Random(f"{seed}:case-management")
    serious = AdverseEvent.objects.active().filter(serious=True).select_related("procedure").order_by("id")
    for event in serious:
        received_on = min(_day(event.aware_on, rng.randint(3, 21)), today, dates.today())
        resolved = event.outcome in (Outcome.RECOVERED, Outcome.RECOVERED_WITH_SEQUELAE, Outcome.FATAL)
        event_services.follow_up_report_create(
            actor=users["registry_admin"],
            event=event,
            received_on=received_on,
            narrative=FOLLOW_UP_NARRATIVES[resolved],
            changes={"case_status": "closed"} if resolved else {},
        )
        event.refresh_from_db()

        def assessed(value: str) -> str:
            return "possible" if value in ("", "unassessable") else value

        event_services.medical_review_record(
            actor=users["safety_reviewer"],
            event=event,
            serious=True,
            **{name: getattr(event, name) for name in SERIOUS_CRITERIA.values()},
            causality_procedure=assessed(event.causality_procedure),
            causality_product=assessed(event.causality_product),
            expectedness="expected" if event_selectors.expected_by_rsi(event) else "unexpected",
            comment="Reviewed against the reference safety information (demo).",
        )
        summary.created["follow_ups"] += 1
        summary.created["medical_reviews"] += 1


def demo_submissions_record(*, seed: int, today: dt.date, actor, summary: DemoSummary) -> None:
    """Record submissions of the expedited reports the demo's cases made due (issue 10).

    Most go in within their clock, about one in six a few days late; reports whose clock is still
    running are left open (the "reports due" page shows them), as are a few overdue ones.
    """
    rng = random.Random(f"{seed}:submissions")
    for due in DueReport.objects.filter(status=DueReportStatus.OPEN).select_related("rule").order_by("id"):
        clock = (due.due_on - due.clock_start).days
        roll = rng.random()
        if roll < 0.05:
            continue  # never submitted: overdue on the page
        days = rng.randint(clock + 1, clock + 10) if roll < 0.2 else rng.randint(1, clock)
        submitted_on = _day(due.clock_start, days)
        if submitted_on > min(today, dates.today()):
            continue
        reference = f"{due.rule.code.upper()}-{rng.getrandbits(32):08X}"
        safety_services.submission_record(
            actor=actor, due_report=due, submitted_on=submitted_on, reference_number=reference
        )
        summary.created["expedited_reports_submitted"] += 1
    summary.created["expedited_reports_open"] = DueReport.objects.filter(status=DueReportStatus.OPEN).count()


def demo_patient_link_issue(*, actor, today: dt.date) -> str:
    """Return the path of a patient link to the Madrid clinic's latest procedure (issue 12)."""
    procedure = (
        Procedure.objects.filter(clinic__code="ES-MAD-01", retracted_at__isnull=True)
        .filter(patient__retracted_at__isnull=True, performed_on__lte=today)
        .order_by("-performed_on", "-id")
        .first()
    )
    if procedure is None:
        return ""
    _link, token = patient_services.patient_link_issue(actor=actor, procedure=procedure)
    return reverse("patients:home", args=[token])


def load_demo_data(*, seed: int = SEED, patients: int = DEFAULT_PATIENTS, today: dt.date | None = None) -> DemoSummary:
    """Return what loading the demo registry created; rows already there are left alone.

    All or nothing: one transaction, one audit context named ``load_demo_data``.
    """
    today = today or dates.today()
    summary = DemoSummary()
    # Drawn apart from the patients' details, and index by index, so the ids (the idempotency
    # key) depend neither on today's date nor on --patients: a larger load extends a smaller one.
    ids_rng = random.Random(f"{seed}:registry-ids")
    registry_ids, specs = [], []
    for _ in range(patients):
        registry_ids.append(_code(ids_rng, "P-"))
        specs.append(ids_rng.choices(CLINICS, weights=[c.share for c in CLINICS])[0])
    with transaction.atomic(), pghistory.context(action="load_demo_data") as audit:
        clinics = demo_clinics_ensure(today=today, summary=summary)
        users = demo_users_ensure(clinics=clinics, summary=summary)
        existing = set(Patient.objects.filter(registry_id__in=registry_ids).values_list("registry_id", flat=True))
        for index, (registry_id, spec) in enumerate(zip(registry_ids, specs, strict=True)):
            if registry_id not in existing:
                demo_patient_create(
                    index=index,
                    seed=seed,
                    registry_id=registry_id,
                    spec=spec,
                    clinic=clinics[spec.code],
                    today=today,
                    retractor=users["registry_admin"],
                    summary=summary,
                )
        if summary.created["patients"]:
            demo_cases_follow_up(seed=seed, today=today, users=users, summary=summary)
            demo_submissions_record(seed=seed, today=today, actor=users["registry_admin"], summary=summary)
            summary.patient_link = demo_patient_link_issue(actor=users["coordinator_madrid"], today=today)
        # Each service nests its own pghistory.context, which overwrites the shared context's
        # metadata; put back the name of what actually wrote these rows.
        pghistory.models.Context.objects.filter(pk=audit.id).update(metadata={"action": "load_demo_data"})
    return summary
