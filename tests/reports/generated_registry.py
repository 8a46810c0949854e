"""A reproducible random registry (fixed seed) for cross-checks, inserted in bulk."""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from events.models import AdverseEvent
from registry.choices import VISIT_SCHEDULE, visit_window
from registry.models import Clinic, FollowUpVisit, Patient, Procedure

SITES = ["knee", "hip", "shoulder", "spine"]
CELL_TYPES = ["bmac", "adipose_svf", "umbilical_cord_msc"]
CATEGORIES = ["injection_site_reaction", "infection", "neoplasm", "systemic_reaction"]
START = dt.date(2018, 1, 1)
LAST = dt.date(2024, 12, 31)


def build_generated_registry(
    *, seed: int = 20240601, procedures: int = 3000, repeat_share: float = 0.0
) -> list[Clinic]:
    """Return the clinics of a new random registry of ``procedures`` procedures.

    It has what the counting rules must survive: day-0 events, repeated events,
    retracted events, events and visits after withdrawal or after the cut-off, deaths,
    procedures with no completed visit, and many ties between days. ``repeat_share`` of the
    patients get a later procedure too (some after 2024-06-30), for the patient unit (DESIGN 2b);
    0 (the default) gives exactly the registry earlier tests were written against.
    """
    rng = random.Random(seed)
    clinics = [
        Clinic.objects.create(code=f"GEN-{i}", name=f"Generated {i}", country=country)
        for i, country in enumerate(["ES", "DE", "ES"])
    ]
    patients, plans = [], []
    for _ in range(procedures):
        clinic = rng.choice(clinics)
        performed = START + dt.timedelta(days=rng.randrange((LAST - START).days))
        withdrawn = performed + dt.timedelta(days=rng.randrange(0, 900)) if rng.random() < 0.08 else None
        died = performed + dt.timedelta(days=rng.randrange(0, 1500)) if rng.random() < 0.05 else None
        if died and died > LAST:
            died = None
        patients.append(
            Patient(
                clinic=clinic,
                sex=rng.choice("FMXU"),
                birth_year=rng.randrange(1930, 2000),
                enrolled_on=min(performed, withdrawn or performed),
                withdrawn_on=withdrawn,
                death_date=died,
            )
        )
        plans.append(performed)
    Patient.objects.bulk_create(patients, batch_size=1000)
    procs = []
    for patient, performed in zip(patients, plans, strict=True):
        cell_type = rng.choice(CELL_TYPES)
        procs.append(
            Procedure(
                patient=patient,
                clinic=patient.clinic,
                performed_on=performed,
                site=rng.choice(SITES),
                laterality="left",
                cell_type=cell_type,
                cell_source="allogeneic" if cell_type == "umbilical_cord_msc" else rng.choice(["autologous"]),
            )
        )
    if repeat_share:
        again = random.Random(seed + 1)
        later = []
        for proc in procs:
            if again.random() < repeat_share:
                performed = proc.performed_on + dt.timedelta(days=again.randrange(0, 700))
                patient = proc.patient
                if performed > LAST or (patient.death_date and performed > patient.death_date):
                    continue
                if patient.withdrawn_on and performed > patient.withdrawn_on:
                    continue
                later.append(
                    Procedure(
                        patient=patient,
                        clinic=patient.clinic,
                        performed_on=performed,
                        site=again.choice(SITES),
                        laterality="right",
                        cell_type=proc.cell_type,
                        cell_source=proc.cell_source,
                    )
                )
        procs = procs + later
    Procedure.objects.bulk_create(procs, batch_size=1000)
    visits, events = [], []
    today = timezone.localdate()
    for proc in procs:
        horizon = rng.choice([0, 0, 40, 200, 400, 800, 2000])
        for label, (days, _early, _late) in VISIT_SCHEDULE.items():
            due = proc.performed_on + dt.timedelta(days=days)
            start, end = visit_window(label, due)
            done = None
            if days <= horizon:
                done = due + dt.timedelta(days=rng.randrange(-3, 4))
                done = max(done, proc.performed_on)
                if done > today or (proc.patient.death_date and done > proc.patient.death_date):
                    done = None  # no visit is completed after the patient's death (the registry refuses it)
            visits.append(
                FollowUpVisit(
                    procedure=proc, visit=label, due_on=due, window_start=start, window_end=end, completed_on=done
                )
            )
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
            day = rng.choice([0, 0, 1, 2, 7, 14, 30, 30, rng.randrange(0, 2200)])
            onset = proc.performed_on + dt.timedelta(days=day)
            if onset > today or (proc.patient.death_date and onset > proc.patient.death_date):
                continue  # nor does an event begin after it
            grade = rng.choice([1, 1, 2, 3, 4])
            serious = rng.random() < 0.15
            retracted = rng.random() < 0.07
            events.append(
                AdverseEvent(
                    procedure=proc,
                    category=rng.choice(CATEGORIES),
                    term="generated",
                    onset_on=onset,
                    grade=grade,
                    serious=serious,
                    serious_hospitalisation=serious,
                    outcome="recovering",  # no resolution date: recovered would need one
                    retracted_at=timezone.now() if retracted else None,
                    retraction_reason="generated" if retracted else "",
                )
            )
    FollowUpVisit.objects.bulk_create(visits, batch_size=5000)
    AdverseEvent.objects.bulk_create(events, batch_size=5000)
    return clinics
