"""manage.py compare_providers (DESIGN.md 2b "Provider comparison, adjusted for case mix").

Every column is checked against an independent computation written here: a per-unit table built
in Python from the plan of the registry (the DESIGN 2b unit rules applied by hand, not the
engine's SQL), then indirect standardisation with pandas and the intervals and tail
probabilities with scipy.stats (chi2, poisson). Hand-worked numbers pin the formulas.

The builders here (PlannedUnit, build_registry, unit_table, run_csv, assert_rows) are also used by
tests/reports/test_compute_signals.py.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import math
import random

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from scipy import stats

from events.models import AdverseEvent
from registry import services
from registry.choices import Role, visit_window
from registry.models import Clinic, FollowUpVisit, Patient, Procedure
from reports.engine.providers import expected_cases, flag, provider_rows, sir_measures
from reports.models import OutcomeDefinition
from tests.factories import UserFactory

# DESIGN 2b: the registry's default risk windows (what --windows registry reads on a fresh database).
REGISTRY_WINDOWS: dict[str, tuple[int, int | None]] = {
    "any": (0, None),
    "serious": (0, None),
    "grade_3_plus": (0, None),
    "injection_site_reaction": (0, 7),
    "systemic_reaction": (0, 7),
    "infection": (0, 90),
    "ectopic_tissue": (0, None),
    "immune_reaction": (0, 90),
    "allergic_reaction": (0, 30),
    "neoplasm": (180, None),
    "neurological": (0, 30),
    "thromboembolic": (0, 90),
    "other": (0, None),
}
OUTCOMES = tuple(REGISTRY_WINDOWS)  # the report order (reports.choices.OUTCOMES)
OPEN_WINDOWS = {code: (0, None) for code in OUTCOMES}
CUTOFF = dt.date(2024, 6, 30)
PROVIDER_COLUMNS = [
    *("group", "outcome", "basis", "procedures", "observed", "person_years", "expected"),
    *("sir", "sir_ci_low", "sir_ci_high", "p_high", "p_low", "flag"),
]


# ---------------------------------------------------------------------------------------------
# A planned registry, written to the database in bulk, and its per-unit table computed by hand


@dataclasses.dataclass
class PlannedUnit:
    """One procedure: where, what, whom, its last completed visit (days after it) and its events
    (category, day, grade, serious, retracted)."""

    clinic: str
    performed: dt.date
    site: str = "knee"
    cell_type: str = "bmac"
    cell_source: str = "autologous"
    processing: str = "minimally_manipulated"
    carrier: str = "saline"
    guidance: str = "ultrasound"
    product_lot: str = "LOT-1"
    sex: str = "F"
    birth_year: int = 1970
    visit_day: int | None = None
    events: list[tuple[str, int, int, bool, bool]] = dataclasses.field(default_factory=list)
    patient: str | None = None  # procedures sharing a key share a patient
    retracted: bool = False


def make_clinics(spec: dict[str, tuple[str, bool]]) -> dict[str, Clinic]:
    """Return {code: clinic} for {code: (country, gmp_certified)}."""
    return {
        code: Clinic.objects.create(code=code, name=f"Clinic {code}", country=country, gmp_certified=gmp)
        for code, (country, gmp) in spec.items()
    }


def build_registry(clinics: dict[str, Clinic], plan: list[PlannedUnit]) -> None:
    """Write the plan: patients, procedures, one completed visit each (when planned) and the events."""
    now = timezone.now()
    first: dict[str, PlannedUnit] = {}
    for i, u in enumerate(plan):
        key = u.patient or f"unit-{i}"
        if key not in first or u.performed < first[key].performed:
            first[key] = u
    patients = {
        key: Patient(
            clinic=clinics[u.clinic],
            sex=u.sex,
            birth_year=u.birth_year,
            enrolled_on=u.performed,
        )
        for key, u in first.items()
    }
    Patient.objects.bulk_create(patients.values())
    procedures = [
        Procedure(
            patient=patients[u.patient or f"unit-{i}"],
            clinic=clinics[u.clinic],
            performed_on=u.performed,
            site=u.site,
            laterality="left",
            cell_source=u.cell_source,
            cell_type=u.cell_type,
            processing=u.processing,
            carrier=u.carrier,
            guidance=u.guidance,
            product_lot=u.product_lot,
        )
        for i, u in enumerate(plan)
    ]
    Procedure.objects.bulk_create(procedures)
    visits, events = [], []
    for u, proc in zip(plan, procedures, strict=True):
        if u.visit_day is not None:
            due = u.performed + dt.timedelta(days=2)
            start, end = visit_window("day_2", due)
            done = u.performed + dt.timedelta(days=u.visit_day)
            visits.append(
                FollowUpVisit(
                    procedure=proc, visit="day_2", due_on=due, window_start=start, window_end=end, completed_on=done
                )
            )
        for category, day, grade, serious, retracted in u.events:
            events.append(
                AdverseEvent(
                    procedure=proc,
                    category=category,
                    term="planned",
                    onset_on=u.performed + dt.timedelta(days=day),
                    grade=grade,
                    serious=serious,
                    serious_hospitalisation=serious,
                    outcome="recovering",
                    retracted_at=now if retracted else None,
                    retraction_reason="Entered twice." if retracted else "",
                )
            )
    FollowUpVisit.objects.bulk_create(visits)
    AdverseEvent.objects.bulk_create(events)
    for u, proc in zip(plan, procedures, strict=True):
        if u.retracted:
            Procedure.objects.filter(pk=proc.pk).update(retracted_at=now, retraction_reason="Entered in error.")


def infection(day: int, grade: int = 1, serious: bool = False) -> tuple[str, int, int, bool, bool]:
    """Return a planned (non-retracted) infection ``day`` days after its procedure."""
    return ("infection", day, grade, serious, False)


def age_band(age: int) -> str:
    for label, high in (("<40", 39), ("40-49", 49), ("50-59", 59), ("60-69", 69), ("70-79", 79)):
        if age <= high:
            return label
    return "80+"


def qualifies(outcome: str, category: str, grade: int, serious: bool) -> bool:
    if outcome == "any":
        return True
    if outcome == "serious":
        return serious
    if outcome == "grade_3_plus":
        return grade >= 3
    return category == outcome


def unit_table(
    plan: list[PlannedUnit],
    clinics: dict[str, Clinic],
    *,
    cutoff: dt.date = CUTOFF,
    windows: dict[str, tuple[int, int | None]],
    unit: str = "procedure",
) -> pd.DataFrame:
    """Return one row per unit of the report with its attributes and, per outcome o, d_<o> (days at risk
    from A, NaN when out of the denominator) and y_<o> (1 case, 0 censored): DESIGN 2 and 2b by hand."""
    kept = [u for u in plan if not u.retracted]
    if unit == "procedure":
        units = [(u, [u]) for u in kept if u.performed <= cutoff]
    else:
        by_patient: dict[str, list[PlannedUnit]] = {}
        for i, u in enumerate(plan):
            if not u.retracted:
                by_patient.setdefault(u.patient or f"unit-{i}", []).append(u)
        units = []
        for procs in by_patient.values():
            eligible = sorted((p for p in procs if p.performed <= cutoff), key=lambda p: p.performed)
            if eligible:
                units.append((eligible[0], procs))
    rows = []
    for first, procs in units:
        t0 = first.performed
        contacts = [p.performed for p in procs]
        contacts += [p.performed + dt.timedelta(days=p.visit_day) for p in procs if p.visit_day is not None]
        events = [
            (cat, grade, serious, p.performed + dt.timedelta(days=day))
            for p in procs
            for cat, day, grade, serious, retracted in p.events
            if not retracted
        ]
        contacts += [onset for *_, onset in events]
        observation_end = (min(max(contacts), cutoff) - t0).days
        clinic = clinics[first.clinic]
        row = {
            "site": first.site,
            "cell_type": first.cell_type,
            "cell_source": first.cell_source,
            "processing": first.processing,
            "carrier": first.carrier,
            "guidance": first.guidance,
            "product_lot": first.product_lot,
            "sex": first.sex,
            "age_band": age_band(t0.year - first.birth_year),
            "clinic": clinic.code,
            "country": clinic.country,
            "gmp": "true" if clinic.gmp_certified else "false",
        }
        for outcome in OUTCOMES:
            s, e = windows[outcome]
            onsets = [
                (onset - t0).days for cat, grade, serious, onset in events if qualifies(outcome, cat, grade, serious)
            ]
            f = min(onsets) if onsets else None
            a, b = s, observation_end if e is None else min(observation_end, e)
            d = y = math.nan
            if (f is None or f >= a) and b >= a:
                if f is not None and f <= b:
                    d, y = f - a, 1
                else:
                    d, y = b - a, 0
            row[f"d_{outcome}"], row[f"y_{outcome}"] = d, y
        rows.append(row)
    return pd.DataFrame(rows)


def run_csv(command: str, *args: str) -> tuple[list[str], list[dict]]:
    """Return (header, rows) of a command's CSV output."""
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    reader = csv.DictReader(io.StringIO(out.getvalue()))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def same(text: str, expected) -> bool:
    """Return whether a CSV cell says ``expected`` (None empty, booleans true/false, floats to 1e-9 in repr)."""
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return text == ""
    if isinstance(expected, bool | np.bool_):
        return text == ("true" if expected else "false")
    if isinstance(expected, int | np.integer):
        return text == str(int(expected))
    if isinstance(expected, float | np.floating):
        if text == "" or repr(float(text)) != text:
            return False
        return float(text) == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
    return text == expected


def assert_rows(actual: list[dict], expected: list[dict], key: tuple[str, ...]) -> None:
    """Assert the same rows (by ``key``) and every column the same as the independent computation."""
    got = {tuple(r[k] for k in key): r for r in actual}
    want = {tuple(str(r[k]) for k in key): r for r in expected}
    assert len(got) == len(actual), "duplicate rows"
    assert sorted(got) == sorted(want)
    wrong = [
        (k, column, got[k][column], value)
        for k, row in want.items()
        for column, value in row.items()
        if not same(got[k][column], value)
    ]
    assert not wrong, wrong[:20]


# ---------------------------------------------------------------------------------------------
# The independent provider comparison


def expected_provider_rows(
    table: pd.DataFrame, *, group: str, adjust: list[str], windows: dict[str, tuple[int, int | None]], outcomes=OUTCOMES
) -> list[dict]:
    """DESIGN 2b indirect standardisation over the per-unit table, with pandas and scipy."""
    rows = []
    groups = sorted(table[group].unique())
    for outcome in outcomes:
        basis = "proportion" if windows[outcome][1] is not None else "person_time"
        den = table[table[f"d_{outcome}"].notna()].copy()
        den["case"] = den[f"y_{outcome}"] == 1
        den["py"] = den[f"d_{outcome}"] / 365.25
        den["z"] = den[adjust].astype(str).agg("|".join, axis=1) if adjust else "all"
        ref = den.groupby("z").agg(cases=("case", "sum"), n=("case", "size"), days=(f"d_{outcome}", "sum"))
        for g in groups:
            mine = den[den[group] == g]
            observed = int(mine["case"].sum())
            expected = 0.0
            for z, cell in mine.groupby("z"):
                if basis == "person_time":
                    py_z = ref.loc[z, "days"] / 365.25
                    if py_z > 0:
                        expected += cell["py"].sum() * (ref.loc[z, "cases"] / py_z)
                else:
                    expected += len(cell) * (ref.loc[z, "cases"] / ref.loc[z, "n"])
            p_high = float(stats.poisson.sf(observed - 1, expected))
            p_low = float(stats.poisson.cdf(observed, expected))
            if expected > 0:
                sir = observed / expected
                low = 0.0 if observed == 0 else stats.chi2.ppf(0.025, 2 * observed) / 2 / expected
                high = stats.chi2.ppf(0.975, 2 * observed + 2) / 2 / expected
            else:
                sir = low = high = None
            if p_high < 0.001:
                label = "above 99.8 %"
            elif p_high < 0.025:
                label = "above 95 %"
            elif p_low < 0.001:
                label = "below 99.8 %"
            elif p_low < 0.025:
                label = "below 95 %"
            else:
                label = ""
            rows.append(
                {
                    "group": g,
                    "outcome": outcome,
                    "basis": basis,
                    "procedures": len(mine),
                    "observed": observed,
                    "person_years": float(mine[f"d_{outcome}"].sum()) / 365.25,
                    "expected": float(expected),
                    "sir": sir,
                    "sir_ci_low": low,
                    "sir_ci_high": high,
                    "p_high": p_high,
                    "p_low": p_low,
                    "flag": label,
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# The registry of these tests

CLINICS = {"HI-1": ("ES", True), "LO-2": ("DE", False), "MID-3": ("ES", False), "EDGE-4": ("FR", True)}
INFECTION_RISK = {"HI-1": 0.75, "LO-2": 0.0, "MID-3": 0.25}


def random_plan(seed: int = 11, per_clinic: int = 40) -> list[PlannedUnit]:
    """Return a reproducible plan: three clinics with very different infection risks and mixed case mix,
    plus clinic EDGE-4, whose one unit (a stratum of its own) has ectopic tissue on day 0 and no other contact."""
    rng = random.Random(seed)
    today = dt.date.today()
    plan = []
    for clinic, risk in INFECTION_RISK.items():
        for i in range(per_clinic):
            performed = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(0, 5 * 365))
            limit = (today - performed).days
            events = []
            if rng.random() < risk:
                events.append(("infection", rng.randrange(0, 120), rng.choice([1, 2, 3]), rng.random() < 0.3, False))
            if rng.random() < 0.5:
                events.append(("injection_site_reaction", rng.randrange(0, 10), 1, False, rng.random() < 0.1))
            if rng.random() < 0.15:
                events.append(("neoplasm", rng.randrange(0, 2000), 3, True, False))
            if rng.random() < 0.1:
                events.append(("ectopic_tissue", rng.randrange(0, 900), 2, False, False))
            plan.append(
                PlannedUnit(
                    clinic=clinic,
                    performed=performed,
                    site=rng.choice(["knee", "hip", "spine"]),
                    cell_type=rng.choice(["bmac", "adipose_svf"]),
                    sex=rng.choice("FM"),
                    birth_year=rng.choice([1948, 1962, 1978]),
                    product_lot=f"LOT-{clinic}-{i % 3}",
                    visit_day=rng.choice([None, 2, 40, 200, 800, 2000]),
                    events=[e for e in events if e[1] <= limit],
                )
            )
    plan[0] = dataclasses.replace(plan[0], visit_day=min((today - plan[0].performed).days, 2500))
    plan.append(
        PlannedUnit(
            clinic="EDGE-4",
            performed=dt.date(2024, 3, 1),
            site="elbow",
            cell_type="amniotic",
            cell_source="allogeneic",
            events=[("ectopic_tissue", 0, 1, False, False)],
        )
    )
    # Not in the report: a retracted procedure and one after the cut-off (events of both ignored).
    plan.append(PlannedUnit(clinic="HI-1", performed=dt.date(2022, 1, 1), events=[("infection", 3, 1, False, False)]))
    plan[-1].retracted = True
    plan.append(PlannedUnit(clinic="LO-2", performed=dt.date(2024, 8, 1), events=[("infection", 3, 1, False, False)]))
    return plan


@pytest.fixture
def registry(db):
    clinics = make_clinics(CLINICS)
    plan = random_plan()
    build_registry(clinics, plan)
    return clinics, plan


# ---------------------------------------------------------------------------------------------
# Command output against the independent computation


@pytest.mark.parametrize(
    ("group", "adjust", "windows"),
    [
        ("clinic", ["site", "cell_type", "age_band", "sex"], "registry"),
        ("clinic", ["site", "cell_type", "age_band", "sex"], "open"),
        ("country", ["site", "sex"], "registry"),
        ("gmp", ["cell_type", "age_band"], "open"),
        ("clinic", [], "registry"),
    ],
)
def test_every_column_matches_indirect_standardisation_by_hand(registry, group, adjust, windows):
    clinics, plan = registry
    header, rows = run_csv(
        "compare_providers", "--group", group, "--adjust", ",".join(adjust), "--cutoff", "2024-06-30",
        "--windows", windows, "--format", "csv",
    )  # fmt: skip
    assert header == PROVIDER_COLUMNS
    chosen = REGISTRY_WINDOWS if windows == "registry" else OPEN_WINDOWS
    table = unit_table(plan, clinics, windows=chosen)
    assert_rows(rows, expected_provider_rows(table, group=group, adjust=adjust, windows=chosen), ("group", "outcome"))
    # Report order: outcome, then group.
    assert [r["outcome"] for r in rows] == sorted((r["outcome"] for r in rows), key=OUTCOMES.index)


def test_closed_windows_compare_proportions_and_open_ones_person_time(registry):
    _, rows = run_csv("compare_providers", "--group", "clinic", "--cutoff", "2024-06-30", "--windows", "registry")
    basis = {r["outcome"]: r["basis"] for r in rows}
    assert basis["infection"] == basis["injection_site_reaction"] == basis["allergic_reaction"] == "proportion"
    assert basis["neoplasm"] == basis["ectopic_tissue"] == basis["any"] == "person_time"
    _, rows = run_csv("compare_providers", "--group", "clinic", "--cutoff", "2024-06-30")
    assert {r["basis"] for r in rows} == {"person_time"}
    _, rows = run_csv("compare_providers", "--group", "clinic", "--cutoff", "2024-06-30", "--window", "60")
    assert {r["basis"] for r in rows} == {"proportion"}


def test_flags_in_both_directions_and_the_expected_zero_edges(registry):
    _, rows = run_csv(
        "compare_providers", "--group", "clinic", "--adjust", "site", "--cutoff", "2024-06-30", "--windows", "registry"
    )
    by = {(r["group"], r["outcome"]): r for r in rows}
    assert by[("HI-1", "infection")]["flag"].startswith("above")
    assert by[("LO-2", "infection")]["flag"].startswith("below")
    assert by[("LO-2", "infection")]["observed"] == "0"
    assert by[("LO-2", "infection")]["sir"] == "0.0"
    assert by[("LO-2", "infection")]["sir_ci_low"] == "0.0"
    # EDGE-4: ectopic tissue on day 0 (a case with 0 days) in a stratum nobody else is in: O = 1, E = 0.
    edge = by[("EDGE-4", "ectopic_tissue")]
    assert (edge["observed"], edge["expected"], edge["person_years"]) == ("1", "0.0", "0.0")
    assert (edge["sir"], edge["sir_ci_low"], edge["sir_ci_high"]) == ("", "", "")
    assert (edge["p_high"], edge["p_low"], edge["flag"]) == ("0.0", "1.0", "above 99.8 %")
    # Its observation ends on day 0, before neoplasm's window starts (day 180): no unit in the denominator.
    edge = by[("EDGE-4", "neoplasm")]
    assert (edge["procedures"], edge["observed"], edge["expected"]) == ("0", "0", "0.0")
    assert (edge["sir"], edge["p_high"], edge["p_low"], edge["flag"]) == ("", "1.0", "1.0", "")


def test_the_patient_unit_counts_patients_from_their_first_procedure(db):
    clinics = make_clinics({"P-1": ("ES", True), "P-2": ("PT", False)})
    d = dt.date
    plan = [
        # Patient x: a hip at P-1, then (not a new unit) a knee with an infection.
        PlannedUnit(clinic="P-1", performed=d(2020, 1, 1), site="hip", patient="x", visit_day=10),
        PlannedUnit(clinic="P-1", performed=d(2020, 6, 1), site="knee", patient="x", events=[infection(5)]),
        PlannedUnit(clinic="P-1", performed=d(2021, 1, 1), site="knee", visit_day=400),
        PlannedUnit(clinic="P-2", performed=d(2021, 2, 1), site="hip", events=[infection(1)]),
        PlannedUnit(clinic="P-2", performed=d(2021, 3, 1), site="knee", patient="y", visit_day=30),
        # After the cut-off: a contact of patient y, and its event one of y's events (capped at the cut-off).
        PlannedUnit(clinic="P-2", performed=d(2024, 8, 1), site="knee", patient="y", events=[infection(2)]),
    ]
    build_registry(clinics, plan)
    for unit in ("procedure", "patient"):
        _, rows = run_csv(
            "compare_providers", "--group", "clinic", "--adjust", "site", "--cutoff", "2024-06-30", "--unit", unit,
            "--outcome", "infection,any",
        )  # fmt: skip
        table = unit_table(plan, clinics, windows=OPEN_WINDOWS, unit=unit)
        want = expected_provider_rows(
            table, group="clinic", adjust=["site"], windows=OPEN_WINDOWS, outcomes=("any", "infection")
        )
        assert_rows(rows, want, ("group", "outcome"))
        procedures = {r["group"]: r["procedures"] for r in rows if r["outcome"] == "any"}
        assert procedures == ({"P-1": "3", "P-2": "2"} if unit == "procedure" else {"P-1": "2", "P-2": "2"})


def test_registry_windows_come_from_the_stored_definitions(registry):
    current = OutcomeDefinition.objects.filter(code="infection").order_by("-version").first()
    OutcomeDefinition.objects.create(
        code="infection",
        label="Infection",
        qualifies="infection",
        window_start_day=0,
        window_end_day=None,
        version=(current.version if current else 0) + 1,
        note="Open from now on.",
    )
    _, rows = run_csv("compare_providers", "--cutoff", "2024-06-30", "--windows", "registry", "--outcome", "infection")
    assert {r["basis"] for r in rows} == {"person_time"}
    clinics, plan = registry
    windows = {**REGISTRY_WINDOWS, "infection": (0, None)}
    table = unit_table(plan, clinics, windows=windows)
    want = expected_provider_rows(
        table, group="clinic", adjust=["site", "cell_type", "age_band", "sex"], windows=windows, outcomes=("infection",)
    )
    assert_rows(rows, want, ("group", "outcome"))


def test_user_scope_limits_the_reference_to_the_users_clinics(registry):
    clinics, plan = registry
    user = UserFactory(username="mid_clinician")
    services.membership_create(user=user, role=Role.CLINICIAN, clinic=clinics["MID-3"])
    _, rows = run_csv("compare_providers", "--cutoff", "2024-06-30", "--user", "mid_clinician", "--adjust", "site")
    assert {r["group"] for r in rows} == {"MID-3"}
    # The reference is the user's scope only: the one clinic is its own reference (SIR 1 where it has cases).
    mine = [u for u in plan if u.clinic == "MID-3"]
    table = unit_table(mine, clinics, windows=OPEN_WINDOWS)
    assert_rows(
        rows, expected_provider_rows(table, group="clinic", adjust=["site"], windows=OPEN_WINDOWS), ("group", "outcome")
    )
    assert {r["sir"] for r in rows if r["observed"] != "0"} == {"1.0"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--adjust", "site,shoe_size"], "Unknown adjustment attribute(s): shoe_size"),
        (["--adjust", "site,site"], "only once"),
        (["--group", "clinic", "--adjust", "clinic"], "cannot also be an adjustment"),
        (["--group", "hospital"], "invalid choice"),
        (["--outcome", "flu"], "Unknown outcomes: flu"),
        (["--window", "-1"], "onset window"),
        (["--user", "nobody"], "No user 'nobody'"),
    ],
)
def test_unknown_names_are_refused_with_a_clear_message(db, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("compare_providers", "--cutoff", "2024-06-30", *args, stdout=io.StringIO())


def test_a_malformed_cutoff_is_refused(db):
    with pytest.raises(CommandError, match="--cutoff must be YYYY-MM-DD"):
        call_command("compare_providers", "--cutoff", "30/06/2024", stdout=io.StringIO())


# ---------------------------------------------------------------------------------------------
# The statistics, by hand


def test_expected_cases_person_time_by_hand():
    # Strata z1: group 0 has 2 PY and 1 case, group 1 has 6 PY and 3 cases -> r = 4/8 PY.
    # Stratum z2: group 0 only, 0 PY (a day-0 case): adds nothing.
    # Stratum z3: group 1 only, 365.25 days and no case: r = 0.
    e = expected_cases(
        group_index=[0, 1, 0, 1],
        stratum_index=[0, 0, 1, 2],
        n=[3, 4, 1, 2],
        cases=[1, 3, 1, 0],
        days=[2 * 365.25, 6 * 365.25, 0, 365.25],
        basis="person_time",
        groups=2,
    )
    assert e.tolist() == pytest.approx([2 * 0.5, 6 * 0.5], rel=1e-15)


def test_expected_cases_proportion_by_hand():
    # z1: 1/3 and 3/4 -> p = 4/7; z2: 1/1 -> p = 1; z3: 0/2 -> p = 0.
    e = expected_cases(
        group_index=[0, 1, 0, 1],
        stratum_index=[0, 0, 1, 2],
        n=[3, 4, 1, 2],
        cases=[1, 3, 1, 0],
        days=[10, 20, 0, 5],
        basis="proportion",
        groups=2,
    )
    assert e.tolist() == pytest.approx([3 * 4 / 7 + 1, 4 * 4 / 7], rel=1e-15)


def test_sir_interval_and_tails_by_hand():
    m = sir_measures(observed=[0, 4, 3], expected=[2.0, 2.0, 0.0])
    # O = 0, E = 2: SIR 0, lower 0, upper chi2.ppf(0.975, 2)/2/2 = -ln(0.025)/2.
    assert m["sir"][0] == 0.0 and m["sir_ci_low"][0] == 0.0
    assert m["sir_ci_high"][0] == pytest.approx(-math.log(0.025) / 2, rel=1e-12)
    assert m["p_high"][0] == 1.0 and m["p_low"][0] == pytest.approx(math.exp(-2), rel=1e-14)
    # O = 4, E = 2: P(X >= 4) = 1 - e^-2 (1 + 2 + 2 + 4/3), P(X <= 4) = e^-2 (1 + 2 + 2 + 4/3 + 2/3).
    assert m["sir"][1] == 2.0
    assert m["p_high"][1] == pytest.approx(1 - math.exp(-2) * (1 + 2 + 2 + 4 / 3), rel=1e-12)
    assert m["p_low"][1] == pytest.approx(math.exp(-2) * 7, rel=1e-12)
    assert m["sir_ci_low"][1] == pytest.approx(stats.chi2.ppf(0.025, 8) / 2 / 2, rel=1e-14)
    # E = 0: no ratio; Poisson(0) is the point mass at 0.
    assert np.isnan(m["sir"][2]) and np.isnan(m["sir_ci_low"][2]) and np.isnan(m["sir_ci_high"][2])
    assert (m["p_high"][2], m["p_low"][2]) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("observed", "expected", "label"),
    [
        (10, 2.0, "above 99.8 %"),  # P(X >= 10) = 4.6e-5
        (6, 2.0, "above 95 %"),  # P(X >= 6) = 0.0166
        (5, 2.0, ""),  # P(X >= 5) = 0.053
        (0, 8.0, "below 99.8 %"),  # e^-8 = 3.4e-4
        (0, 5.0, "below 95 %"),  # e^-5 = 0.0067
        (0, 3.0, ""),  # e^-3 = 0.0498
        (0, 0.0, ""),
        (1, 0.0, "above 99.8 %"),
    ],
)
def test_flags(observed, expected, label):
    m = sir_measures(observed=[observed], expected=[expected])
    assert flag(float(m["p_high"][0]), float(m["p_low"][0])) == label


def test_provider_rows_keep_a_group_with_no_unit_in_the_denominator():
    # Group "b" has units in the report but none in outcome 1's denominator.
    cells = [("a", ("knee",), 2, 1, 100, 2, 0, 100), ("b", ("knee",), 1, 1, 0, 0, 0, 0)]
    rows = provider_rows(cells=cells, outcomes=["x", "y"], windows=[(0, None), (0, 7)])
    assert [(r["group"], r["outcome"], r["procedures"], r["basis"]) for r in rows] == [
        ("a", "x", 2, "person_time"),
        ("b", "x", 1, "person_time"),
        ("a", "y", 2, "proportion"),
        ("b", "y", 0, "proportion"),
    ]
    b = rows[3]
    assert (b["observed"], b["expected"], b["sir"], b["p_high"], b["p_low"], b["flag"]) == (0, 0.0, None, 1.0, 1.0, "")
    # Group "b" on outcome x: a case on day 0, the stratum's rate 2 cases / (100 days / 365.25).
    assert rows[1]["expected"] == 0.0 and rows[1]["flag"] == "above 99.8 %"
