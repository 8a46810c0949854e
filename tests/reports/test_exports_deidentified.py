"""The de-identified line listing: GET /api/v1/exports/adverse-events.deidentified.csv (Hardening 18).

k-anonymity is checked from the outside: the test groups the published rows by their
quasi-identifiers (birth year, sex, country, procedure period) and counts the distinct patient
pseudonyms of each group; every group must hold at least DEIDENTIFIED_MIN_K patients.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.dates import today
from events.models import AdverseEvent
from reports.choices import ExportKind
from reports.exports.deidentified import COLUMNS, PERIOD_WIDTHS, QUASI_IDENTIFIERS, plan
from reports.exports.listing import top_coded
from reports.exports.models import ExportLog
from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory
from tests.reports.conftest import add_event, make_procedure

pytestmark = pytest.mark.django_db

URL = "/api/v1/exports/adverse-events.deidentified.csv"
LIMITED = "/api/v1/exports/adverse-events.csv?purpose=Re-identification+risk+review"


def read(response) -> list[dict]:
    assert response.status_code == 200, response.content
    reader = csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))
    header = next(reader)
    assert tuple(header) == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def smallest_class(rows: list[dict], quasi_identifiers=QUASI_IDENTIFIERS) -> int | None:
    """Return the fewest distinct patients sharing one combination of ``quasi_identifiers`` (None: no row)."""
    patients = defaultdict(set)
    for row in rows:
        patients[tuple(row[q] for q in quasi_identifiers)].add(row["patient"])
    return min(map(len, patients.values())) if patients else None


@pytest.fixture
def registry(clinic_a, clinic_b, alice, charlie, root):
    """Return a registry of 43 patients at clinic A (infections) and 15 at clinic B (neoplasms).

    Birth years, sexes and procedure years vary, so the exact combinations are mostly unique;
    one patient is sex X, one is over 90, one has two procedures, one event is retracted.
    """
    events = []
    for i in range(40):
        procedure = make_procedure(
            clinic=clinic_a,
            performed_on=dt.date(2022 + i % 3, 1 + i % 12, 10),
            sex="F" if i % 2 else "M",
            birth_year=1945 + (i * 7) % 35,
        )
        events.append(add_event(procedure, 3, category="infection"))
    for sex, birth_year in (("X", 1970), ("F", today().year - 95), ("M", 1960)):
        events.append(
            add_event(
                make_procedure(clinic=clinic_a, performed_on=dt.date(2023, 5, 5), sex=sex, birth_year=birth_year), 3
            )
        )
    second = ProcedureFactory(patient=events[-1].procedure.patient, performed_on=dt.date(2024, 2, 2))
    events.append(add_event(second, 10, category="infection"))
    events.append(add_event(second, 20, category="infection", retracted=True))
    for i in range(15):
        procedure = make_procedure(
            clinic=clinic_b, performed_on=dt.date(2022 + i % 2, 3, 3), sex="FM"[i % 2], birth_year=1950 + i
        )
        events.append(add_event(procedure, 400, category="neoplasm"))
    return events


@pytest.mark.parametrize("min_k", [2, 5, 11, 20])
def test_every_published_combination_is_shared_by_at_least_k_patients(registry, root, settings, min_k):
    settings.DEIDENTIFIED_MIN_K = min_k
    response = api_client_for(root).get(URL)
    rows = read(response)
    k = smallest_class(rows)
    assert k is not None and k >= min_k
    assert response["X-K-Anonymity"] == str(k)
    counting = AdverseEvent.objects.filter(retracted_at__isnull=True).count()
    assert len(rows) + int(response["X-Suppressed-Rows"]) == counting
    # 58 patients: the all-generalised node suppresses nothing, so the 5 % cap can always be kept.
    assert int(response["X-Suppressed-Rows"]) * 100 <= settings.DEIDENTIFIED_MAX_SUPPRESSED_PERCENT * counting


def test_the_limited_listing_singles_patients_out_and_the_deidentified_listing_does_not(registry, root):
    limited = csv.DictReader(io.StringIO(b"".join(api_client_for(root).get(LIMITED).streaming_content).decode()))
    combos = defaultdict(set)
    for row in limited:
        combos[(row["birth_year"], row["sex"], row["clinic"], row["performed_on"])].add(row["registry_id"])
    unique = {next(iter(ids)) for ids in combos.values() if len(ids) == 1}
    assert len(unique) >= 50  # what the review found on the demo data: nearly everyone is unique
    assert smallest_class(read(api_client_for(root).get(URL))) >= 11


def test_it_carries_no_id_free_text_date_lot_or_clinic(registry, root, clinic_a, clinic_b):
    body = b"".join(api_client_for(root).get(URL).streaming_content).decode()
    secrets = {clinic_a.code, clinic_a.name, clinic_b.code, clinic_b.name, "Knee pain at injection site"}
    for event in registry:
        procedure = event.procedure
        secrets |= {event.external_id, procedure.external_id, procedure.product_lot, procedure.patient.registry_id}
    assert not [secret for secret in secrets if secret in body]
    assert not re.search(r"\d{4}-\d{2}-\d{2}", body)  # no date at all: days since the procedure instead


def test_pseudonyms_hold_within_an_export_and_change_at_every_export(clinic_a, root, settings):
    settings.DEIDENTIFIED_MIN_K = 2
    patients = [PatientFactory(clinic=clinic_a, sex="F", birth_year=1960) for _ in range(3)]
    for patient in patients:
        for month in (2, 3):
            procedure = ProcedureFactory(patient=patient, performed_on=dt.date(2023, month, 1))
            add_event(procedure, 1)
            add_event(procedure, 2, category="systemic_reaction")
    first, second = read(api_client_for(root).get(URL)), read(api_client_for(root).get(URL))
    assert len(first) == len(second) == 12
    for column, distinct in (("patient", 3), ("procedure", 6), ("event", 12)):
        assert len({row[column] for row in first}) == distinct
        assert not {row[column] for row in first} & {row[column] for row in second}
    by_procedure = defaultdict(set)
    for row in first:
        by_procedure[row["procedure"]].add(row["patient"])
    assert all(len(owners) == 1 for owners in by_procedure.values())  # a procedure belongs to one patient


def test_a_patient_90_or_older_at_any_procedure_is_90_plus_on_every_row(clinic_a, root, settings):
    settings.DEIDENTIFIED_MIN_K = 2
    born = today().year - 90
    for _ in range(2):
        patient = PatientFactory(clinic=clinic_a, birth_year=born, enrolled_on=dt.date(today().year - 2, 1, 1))
        for performed_on in (dt.date(today().year - 2, 1, 15), today()):  # aged 88, then 90
            AdverseEventFactory(
                procedure=ProcedureFactory(patient=patient, performed_on=performed_on), onset_on=performed_on
            )
    rows = read(api_client_for(root).get(URL))
    assert len(rows) == 4
    assert {row["birth_year"] for row in rows} == {"90+"}
    assert top_coded(born, export_year=today().year) == "90+" and top_coded(born + 1, export_year=today().year) != "90+"


def test_a_listing_of_fewer_than_k_patients_publishes_no_row(clinic_a, alice):
    for birth_year in (1950, 1960, 1970):
        add_event(make_procedure(clinic=clinic_a, performed_on=dt.date(2023, 1, 15), birth_year=birth_year), 1)
    response = api_client_for(alice).get(URL)
    assert read(response) == []
    assert (response["X-K-Anonymity"], response["X-Suppressed-Rows"]) == ("0", "3")
    assert ExportLog.objects.get().row_count == 0


def test_each_clinic_gets_only_its_own_rows_and_retracted_events_never(registry, alice, charlie, settings):
    settings.DEIDENTIFIED_MIN_K = 2
    own = read(api_client_for(alice).get(URL))
    assert own and "neoplasm" not in {row["category"] for row in own}
    assert {row["country"] for row in own} <= {"ES", "*"}
    other = read(api_client_for(charlie).get(URL + "?clinic=A-MAD"))
    assert other == []
    theirs = read(api_client_for(charlie).get(URL))
    assert {row["category"] for row in theirs} == {"neoplasm"} and len(theirs) <= 15
    everything = read(api_client_for(alice).get(URL + "?retracted=true"))
    assert everything == []  # the retracted event is never listed, even when asked for


def test_it_needs_no_purpose_applies_the_filters_and_is_logged(registry, root, settings):
    settings.DEIDENTIFIED_MIN_K = 2
    rows = read(api_client_for(root).get(URL + "?category=neoplasm"))
    assert {row["category"] for row in rows} == {"neoplasm"}
    log = ExportLog.objects.get()
    assert (log.kind, log.purpose, log.filters, log.row_count) == (
        ExportKind.DEIDENTIFIED_LISTING_CSV,
        "",
        {"category": "neoplasm"},
        len(rows),
    )
    assert api_client_for(root).get(URL + "?grade_min=high").status_code == 400
    assert ExportLog.objects.count() == 1


def test_a_user_without_a_role_is_refused(registry):
    from tests.factories import UserFactory

    assert api_client_for(UserFactory(username="nobody")).get(URL).status_code == 403
    assert not ExportLog.objects.exists()


# The choice of generalisation, on made-up registries: whatever the data, no class below k is published.
_PATIENT = st.tuples(
    st.sampled_from(["90+", *map(str, range(1930, 2000))]),
    st.sampled_from("FMXU"),
    st.sampled_from(["ES", "DE", "US", "KR"]),
    st.lists(st.integers(2015, 2026), min_size=1, max_size=3),  # procedure years, an event each
)


def _cells_of(patients):
    """Return what deidentified._cells reads from the database, computed in Python from ``patients``."""
    members, rows = defaultdict(set), defaultdict(int)
    for pid, (birth, sex, country, years) in enumerate(patients):
        for year in years:
            for width in PERIOD_WIDTHS:
                key = (width, birth, sex, country, 0 if width == 0 else year - year % width)
                members[key].add(pid)
                rows[key] += 1
    cells = defaultdict(dict)
    for (width, *key), ids in members.items():
        cells[width][tuple(key)] = (len(ids), rows[(width, *key)])
    return cells


@hypothesis_settings(max_examples=150, deadline=None)
@given(patients=st.lists(_PATIENT, max_size=80), min_k=st.integers(2, 15), cap=st.integers(0, 20))
def test_the_plan_never_publishes_a_class_below_k(patients, min_k, cap):
    decided = plan(_cells_of(patients), min_k=min_k, max_suppressed_percent=cap)
    published = {(m["b"], m["s"], m["c"], m["y"]): tuple(m[q] for q in QUASI_IDENTIFIERS) for m in decided.mapping}
    classes, shown = defaultdict(set), 0
    for pid, (birth, sex, country, years) in enumerate(patients):
        for year in years:
            if (birth, sex, country, year) in published:
                classes[published[(birth, sex, country, year)]].add(pid)
                shown += 1
    assert all(len(ids) >= min_k for ids in classes.values())
    total = sum(len(p[3]) for p in patients)
    assert shown + decided.suppressed_rows == total
    if len(patients) >= min_k:  # the all-* node publishes everything: the cap can always be kept
        assert decided.suppressed_rows * 100 <= cap * total
