"""The public pages and open data of a publication: what they show, that no count from 1 to 10 is printed
anywhere, and that they are cacheable (ETag, Cache-Control, 304) and built once."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from public.services import publication_create
from tests.public.conftest import build_public_registry, run_of
from tests.public.readers import BLANK, csv_counts, csv_records, html_counts, html_table, json_counts, read_json


@pytest.fixture
def published(public_run, root):
    return publication_create(actor=root, run=public_run, note="Annual comparison 2024")


@pytest.mark.django_db
def test_the_index_lists_current_publications_without_a_login(published, client):
    response = client.get("/public/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/public/{published.pk}/"' in html and "Annual comparison 2024" in html
    assert "data up to 30 June 2024" in html


@pytest.mark.django_db
def test_an_unknown_publication_is_404(client):
    assert client.get("/public/999999/").status_code == 404
    assert client.get("/public/999999/comparison.json").status_code == 404


@pytest.mark.django_db
def test_the_page_shows_clinics_countries_certification_and_the_comparison(published, client):
    html = client.get(f"/public/{published.pk}/").content.decode()
    clinics = {row[0].split()[1]: row for row in html_table(html, "clinic-list")[:-1]}
    assert clinics["D-VAL"][1:4] == ["ES", "no", "ISO 15189, until 2020-01-01 expired"]
    assert clinics["A-MAD"][1:4] == ["ES", "yes", "ACSA, until 2030-01-01"]
    assert clinics["C-POR"][4:] == ["<11", BLANK]  # 6 procedures; completeness follows a small count
    assert {row[0]: row[1] for row in html_table(html, "country-list")} == {
        "ES": "A-MAD, D-VAL",
        "DE": "B-BER",
        "PT": "C-POR",
        "FR": "E-LYO",
    }
    # Flags both ways, the low one with its caveat beside the follow-up completeness.
    any_rows = {r[0]: r for r in html_table(html, "t-any-clinic")}
    assert any_rows["E-LYO"][5] == "more than expected (above 99.8 % limit)"
    infection = {r[0]: r for r in html_table(html, "t-infection-clinic")}
    assert infection["D-VAL"][2] == "0"  # zero is printed
    assert infection["D-VAL"][5:] == ["fewer than expected: safer care or under-reporting (below 95 % limit)", "21 %"]
    assert infection["B-BER"][4] == "1.47 (0.76 to 2.56)" and infection["B-BER"][5] == "as expected"
    # Funnel charts: inline SVG with a title, a description and the same points as a table.
    assert html.count('<svg viewBox="0 0 640 400" role="img" aria-labelledby=') == 3
    assert '<title id="funnel-infection-title">' in html and '<desc id="funnel-infection-desc">' in html
    assert "The chart as a table" in html
    for text in ("What the numbers mean", "What to ask a clinic", "GMP", "accredit", "country's rules", "CC BY 4.0"):
        assert text in html
    assert "<script" not in html


def _all_printed_counts(html: str, data: dict, csv_rows: list[dict]) -> list:
    values = list(json_counts(data).values()) + list(csv_counts(csv_rows).values())
    values += list(html_counts(html, [o["code"] for o in data["outcomes"]], data["groupings"]).values())
    values = [v for pair in values for v in pair]
    values += [c["procedures"] for c in data["clinics"] + data["countries"]] + [data["total"]["procedures"]]
    for table in ("clinic-list", "country-list"):
        values += [row[-2] for row in html_table(html, table)]
    return values


@pytest.mark.django_db
def test_no_count_from_1_to_10_is_printed_in_the_page_the_csv_or_the_json(published, client):
    html = client.get(f"/public/{published.pk}/").content.decode()
    data = read_json(client.get(f"/public/{published.pk}/comparison.json").content)
    _, csv_rows = csv_records(client.get(f"/public/{published.pk}/comparison.csv").content)
    values = _all_printed_counts(html, data, csv_rows)
    numbers = [int(v) for v in values if v not in (None, "<11", BLANK)]
    assert numbers and not [n for n in numbers if 1 <= n <= 10]
    assert values.count("<11") >= 10 and 0 in numbers
    # Derived figures of a hidden count are blank too: no SIR, interval or flag where observed is hidden.
    for outcome in data["outcomes"]:
        for rows in outcome["tables"].values():
            for r in rows:
                if not isinstance(r["observed"], int) or r["expected"] is None:
                    assert (r["sir"], r["sir_ci_low"], r["sir_ci_high"], r["flag"]) == (None, None, None, None)
    # Follow-up completeness: no percentage of fewer than 11 visits (C-POR's 6 procedures).
    assert data["clinics"][[c["code"] for c in data["clinics"]].index("C-POR")]["followup_completeness_percent"] is None


@pytest.mark.django_db
def test_the_open_data_carry_version_cut_off_suppression_rule_and_licence(published, client):
    response = client.get(f"/public/{published.pk}/comparison.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="publication-{published.pk}.csv"'
    meta, rows = csv_records(response.content)
    assert meta[0] == f"# version: 1.0+publication.{published.pk} (schema 1.0, publication {published.pk})"
    assert "data cut-off: 2024-06-30" in meta[1]
    assert meta[2].startswith('# suppression: Counts from 1 to 10 are shown as "<11"')
    assert meta[3].startswith("# licence: Creative Commons Attribution 4.0 International (CC BY 4.0)")
    assert {r["outcome"] for r in rows} == {"infection", "any", "injection_site_reaction"}
    data = read_json(client.get(f"/public/{published.pk}/comparison.json").content)
    assert (data["schema_version"], data["version"], data["publication"]) == (
        "1.0",
        f"1.0+publication.{published.pk}",
        published.pk,
    )
    assert data["cutoff_on"] == "2024-06-30" and "CC BY 4.0" in data["licence"]
    assert data["suppression_rule"].startswith("Counts from 1 to 10")


@pytest.mark.django_db
def test_csv_cells_never_open_as_formulas(root, client):
    build_public_registry(
        {"-ONE": ("ES", True, "=HYPERLINK(1)", None, 12, 0, 0), "TWO": ("DE", True, "", None, 12, 0, 0)}
    )
    publication = publication_create(actor=root, run=run_of(["infection"]), note="")
    _, rows = csv_records(client.get(f"/public/{publication.pk}/comparison.csv").content)
    clinic = next(r for r in rows if r["grouping"] == "clinic" and r["group"].endswith("-ONE"))
    assert (clinic["group"], clinic["label"], clinic["accreditation_body"]) == ("'-ONE", "'-ONE", "'=HYPERLINK(1)")


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["", "comparison.csv", "comparison.json"])
def test_pages_are_cacheable_with_an_etag_and_answer_304(published, client, suffix):
    url = f"/public/{published.pk}/{suffix}"
    first = client.get(url)
    assert first.status_code == 200
    assert first["Cache-Control"] == "public, max-age=300"
    etag = first["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert "Set-Cookie" not in first.headers
    # The same for everyone: a shared cache keeps one copy, not one per visitor's cookies.
    assert "cookie" not in first.get("Vary", "").lower()
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (again["ETag"], again["Cache-Control"]) == (etag, "public, max-age=300")
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    assert client.get(url, headers={"If-None-Match": f"W/{etag}"}).status_code == 304


@pytest.mark.django_db
def test_a_warm_page_is_served_from_the_cache_with_one_query(published, client):
    client.get(f"/public/{published.pk}/")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/public/{published.pk}/")
    assert response.status_code == 200
    # Only the publication's row (is it withdrawn?): the tables come from the cache.
    assert len(queries) == 1, [q["sql"] for q in queries]


@pytest.mark.django_db
def test_the_index_is_cacheable_too(published, client):
    first = client.get("/public/")
    assert first["Cache-Control"] == "public, max-age=300"
    assert "cookie" not in first.get("Vary", "").lower()
    assert client.get("/public/", headers={"If-None-Match": first["ETag"]}).status_code == 304


@pytest.mark.django_db
def test_a_logged_in_visitor_gets_the_shared_page_without_a_session_cookie(published, client, alice):
    # A shared cache may store this response for everyone: it must not carry alice's session or CSRF cookie.
    client.force_login(alice)
    for url in ("/public/", f"/public/{published.pk}/", f"/public/{published.pk}/comparison.csv"):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Cache-Control"] == "public, max-age=300"
        assert not response.cookies, (url, list(response.cookies))
        assert "cookie" not in response.get("Vary", "").lower()
