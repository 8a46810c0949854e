"""Every CSV and XLSX the registry writes is safe to open in a spreadsheet (Hardening 7).

OWASP CSV injection: a cell beginning with = + - @, a tab or a line break (or their full-width
forms) is evaluated by Excel, LibreOffice or Sheets. The CSVs neutralise such cells with a
leading apostrophe (in the COPY SELECT itself, so they keep streaming); the XLSX types every
string as text, never as a formula, and marks formula-like ones with quotePrefix. Invisible
characters in free text stored before input was checked are stripped on the way out.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from django.db import connection
from django.db.models import Value
from django.test import Client
from openpyxl import load_workbook

from core.text import SpreadsheetFreeText, SpreadsheetText, spreadsheet_cell, starts_like_formula, strip_unsafe
from events.models import AdverseEvent
from registry.models import FollowUpVisit
from reports.documents.workbook import build_workbook
from reports.exports.incidence_csv import header as header_of
from reports.exports.incidence_csv import write_csv
from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory, ClinicFactory, PatientFactory, ProcedureFactory
from tests.reports.documents_data import finished_run

pytestmark = pytest.mark.django_db

LISTING = "/api/v1/exports/adverse-events.csv?purpose=Safety+review"
PAYLOADS = {
    "equals": '=HYPERLINK("http://x","y")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(A1:A9)",
    "tab": "\t=1+1",
    "carriage return": "\r=1+1",
    "full-width equals": "\uff1dHYPERLINK(1)",
    "full-width plus": "\uff0b1",
    "full-width minus": "\uff0d1",
    "full-width at": "\uff20SUM(1)",
}
NASTY_TEXT = [
    *PAYLOADS.values(),
    "plain text",
    "'already quoted",
    "a\u202e=b",
    "\u202e=hidden trigger",
    "\u200b@zero width first",
    "keeps\ttabs\nand lines",
    "\u0001\u0002=start",
    "",
]


def _cells(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def _assert_inert(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not starts_like_formula(cell), f"live cell {cell!r} in {row}"


def _in_sql(expression) -> str:
    sql, params = expression.as_sql(AdverseEvent.objects.all().query.get_compiler(connection=connection), connection)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return cursor.fetchone()[0]


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_the_sql_twins_neutralise_exactly_as_spreadsheet_cell(text):
    assert _in_sql(SpreadsheetFreeText(Value(text))) == spreadsheet_cell(text)
    # SpreadsheetText only ever reads ids and codes the CHECK constraints keep free of invisible characters.
    visible = strip_unsafe(text)
    assert _in_sql(SpreadsheetText(Value(visible))) == spreadsheet_cell(visible)


def test_every_cell_of_the_line_listing_is_inert_and_ids_keep_their_text(clinic_a, root):
    clinic = ClinicFactory(code="-HOT", name="Clinic minus", country="PT")
    patient = PatientFactory(clinic=clinic, registry_id="@P-1")
    events = []
    for i, payload in enumerate(PAYLOADS.values()):
        procedure = ProcedureFactory(patient=patient, external_id=f"-{i}+PR", performed_on=dt.date(2023, 1, 15))
        events.append(AdverseEventFactory(procedure=procedure, external_id=f"={i}+X", term=payload))
    body = b"".join(api_client_for(root).get(LISTING).streaming_content)
    header, *rows = _cells(body)
    assert len(rows) == len(PAYLOADS)
    _assert_inert(rows)
    by_event = {row[header.index("event_id")]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_event) == {f"'={i}+X" for i in range(len(PAYLOADS))}  # the id survives behind the apostrophe
    first = by_event["'=0+X"]
    assert first["term"] == "'" + PAYLOADS["equals"]
    assert (first["clinic"], first["registry_id"], first["procedure_id"]) == ("'-HOT", "'@P-1", "'-0+PR")
    assert "'+1+cmd|' /C calc'!A0" in {row["term"] for row in by_event.values()}


def test_free_text_stored_before_it_was_checked_leaves_without_invisible_characters(clinic_a, root):
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    with connection.cursor() as cursor:  # as an old row would be: free text has no CHECK constraint
        cursor.execute(
            "UPDATE events_adverseevent SET term = %s WHERE id = %s",
            ["\u202e=cmd\u0001 swelling\u200b\tleft", event.pk],
        )
    header, row = _cells(b"".join(api_client_for(root).get(LISTING).streaming_content))
    assert row[header.index("term")] == "'=cmd swelling\tleft"
    fhir = api_client_for(root).get("/api/v1/exports/adverse-events.fhir.json?purpose=Exchange")
    body = b"".join(fhir.streaming_content).decode("unicode_escape")
    assert "=cmd swelling\tleft" in body and "\u202e" not in body and "\u200b" not in body


def test_the_overdue_visits_csv_is_inert(clinic_a, root):
    clinic = ClinicFactory(code="-LATE", name="Late clinic", country="ES")
    patient = PatientFactory(clinic=clinic, registry_id="=P-LATE")
    procedure = ProcedureFactory(patient=patient, external_id="+PR-LATE", performed_on=dt.date(2023, 1, 15))
    assert FollowUpVisit.objects.overdue().filter(procedure=procedure).exists()
    body = b"".join(api_client_for(root).get("/api/v1/exports/overdue-visits.csv").streaming_content)
    _, *rows = _cells(body)
    assert rows
    _assert_inert(rows)
    assert {(r[0], r[1], r[2]) for r in rows} == {("'-LATE", "'=P-LATE", "'+PR-LATE")}


def test_the_run_csv_is_inert_and_keeps_numbers_as_numbers():
    out = io.StringIO()
    strata = ["clinic", "site"]
    record = dict.fromkeys(header_of(strata)[len(strata) :])
    record |= {"stratum": {"clinic": "-HOT", "site": "knee"}, "outcome": "any", "procedures": 3, "proportion": -0.5}
    write_csv(out, strata=strata, records=[record])
    header, row = _cells(out.getvalue().encode())
    values = dict(zip(header, row, strict=True))
    assert values["clinic"] == "'-HOT" and values["site"] == "knee"
    assert values["proportion"] == "-0.5" and values["procedures"] == "3"  # numbers are data, not formulas


def test_the_run_csv_download_is_inert_end_to_end(root, clinic_a):
    hot = ClinicFactory(code="-HOT", name="Clinic minus", country="PT")
    for clinic in (clinic_a, hot):
        AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic, performed_on=dt.date(2023, 1, 15)))
    run = finished_run(actor=root, strata=("clinic",), outcomes=["any"])
    client = Client()
    client.force_login(root)
    response = client.get(f"/admin/reports/incidencerun/{run.pk}/csv/")
    assert response.status_code == 200
    _, *rows = _cells(response.content)
    _assert_inert(rows)
    assert "'-HOT" in {row[0] for row in rows}


def _xml_of(content: bytes, sheet_index: int) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return archive.read(f"xl/worksheets/sheet{sheet_index}.xml").decode()


def test_the_workbook_writes_formula_like_and_dirty_strings_as_inert_text(root, clinic_a):
    AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2023, 1, 15)))
    run = finished_run(actor=root, strata=("site",), outcomes=["any"])
    listing = [(payload, "AE-\u0001-X", "ok\u202e", 3) for payload in PAYLOADS.values()]
    content = build_workbook(run, records=[], comparisons=[], listing=listing, user=root)  # no IllegalCharacterError
    xml = _xml_of(content, 3)  # the Line listing sheet
    assert "<f>" not in xml and "<f " not in xml  # no formula anywhere
    wb = load_workbook(io.BytesIO(content))
    sheet = wb["Line listing"]
    for row in sheet.iter_rows(min_row=2):
        payload, control, bidi, number = row[0], row[1], row[2], row[3]
        # The value exactly (XML itself stores a carriage return as a line feed).
        assert payload.data_type == "s" and payload.value in {p.replace("\r", "\n") for p in PAYLOADS.values()}
        assert payload.quotePrefix, payload.value  # Excel keeps it text even when the cell is edited
        assert (control.value, bidi.value, number.value) == ("AE--X", "ok", 3)
        assert number.data_type == "n"


def test_an_end_to_end_workbook_has_no_formula_even_with_a_minus_clinic(root, clinic_a):
    hot = ClinicFactory(code="-HOT", name="Clinic minus", country="PT")
    for clinic in (clinic_a, hot):
        AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic, performed_on=dt.date(2023, 1, 15)))
    run = finished_run(actor=root, strata=("clinic",), outcomes=["any"])
    client = api_client_for(root)
    response = client.get(f"/api/v1/reports/incidence-runs/{run.pk}/report.xlsx")
    assert response.status_code == 200
    for index in range(1, 5):
        xml = _xml_of(response.content, index)
        assert "<f>" not in xml and "<f " not in xml
    cells = [c for row in load_workbook(io.BytesIO(response.content))["Incidence"].iter_rows() for c in row]
    minus = [c for c in cells if c.value == "-HOT"]
    assert minus and all(c.data_type == "s" and c.quotePrefix for c in minus)
