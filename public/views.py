"""The public comparison: plain pages and open-data downloads, no login, cacheable (ETag, Cache-Control, 304).

Every page and download of a publication is built once per publication and day (public.cache) from
the run's frozen snapshot. The withdrawal is read from the database on every request: a withdrawn
publication answers 410 Gone everywhere at once.
"""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import parse_etags
from django.views.decorators.http import require_safe

from core.text import spreadsheet_cell
from public import cache, selectors
from public.funnel import funnel
from public.models import Publication
from public.tables import build

MAX_AGE = 300
CACHE_CONTROL = f"public, max-age={MAX_AGE}"
CSV_COLUMNS = (
    "outcome",
    "outcome_label",
    "basis",
    "grouping",
    "group",
    "label",
    "procedures",
    "observed",
    "expected",
    "sir",
    "sir_ci_low",
    "sir_ci_high",
    "flag",
    "country",
    "gmp_certified",
    "accreditation_body",
    "accreditation_expires_on",
    "followup_completeness_percent",
)


def _respond(request: HttpRequest, body: bytes, etag: str, content_type: str, *, status: int = 200) -> HttpResponse:
    """Return the body, or 304 Not Modified when the client holds this ETag; cacheable by anyone for MAX_AGE."""
    held = [tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))]
    if status == 200 and (etag in held or "*" in held):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type=content_type, status=status)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    response.cookie_independent = True  # core.middleware.CookieIndependentMiddleware: no Vary: Cookie
    return response


def _data(publication: Publication) -> dict:
    today = timezone.localdate()
    return cache.cached(publication.pk, "data", today, lambda: build(publication, today=today))


def _gone(request: HttpRequest, publication: Publication) -> HttpResponse:
    body = render_to_string("public/gone.html", {"publication": publication}).encode()
    return _respond(request, body, cache.etag_of(body), "text/html; charset=utf-8", status=410)


def _cached_response(request, publication: Publication, kind: str, content_type: str, render) -> HttpResponse:
    if publication.withdrawn_at is not None:
        return _gone(request, publication)
    body, etag = cache.cached(
        publication.pk, kind, timezone.localdate(), lambda: _with_etag(render(_data(publication)))
    )
    return _respond(request, body, etag, content_type)


def _with_etag(body: bytes) -> tuple[bytes, str]:
    return body, cache.etag_of(body)


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """Return the list of current publications."""
    publications = list(selectors.publications_current())
    body = render_to_string("public/index.html", {"publications": publications}).encode()
    return _respond(request, body, cache.etag_of(body), "text/html; charset=utf-8")


def _page(data: dict) -> bytes:
    outcomes = []
    for outcome in data["outcomes"]:
        rows = outcome["tables"]["clinic"]
        outcomes.append({**outcome, "funnel": funnel(rows), "unplotted": sum(1 for r in rows if r["sir"] is None)})
    context = {"data": data, "outcomes": outcomes, "csv_name": "comparison.csv", "json_name": "comparison.json"}
    return render_to_string("public/publication.html", context).encode()


@require_safe
def publication(request: HttpRequest, pk: int) -> HttpResponse:
    """Return the publication's page: clinics, countries, and per outcome the comparison and its funnel."""
    return _cached_response(request, selectors.publication_public(pk), "html", "text/html; charset=utf-8", _page)


def _clinic_columns(data: dict) -> dict[str, dict]:
    return {
        c["code"]: {
            "country": c["country"],
            "gmp_certified": "yes" if c["gmp_certified"] else "no",
            "accreditation_body": c["accreditation_body"],
            "accreditation_expires_on": c["accreditation_expires_on"] or "",
        }
        for c in data["clinics"]
    }


def csv_rows(data: dict):
    """Yield the CSV records of the publication's tables (dicts keyed by CSV_COLUMNS)."""
    clinics = _clinic_columns(data)
    for outcome in data["outcomes"]:
        rows = [r for grouping in data["groupings"] for r in outcome["tables"].get(grouping, [])]
        for row in [*rows, outcome["total"]]:
            record = {
                "outcome": outcome["code"],
                "outcome_label": outcome["label"],
                "basis": outcome["basis"],
                **{k: row[k] for k in ("grouping", "group", "label", "procedures", "observed", "expected")},
                **{k: row[k] for k in ("sir", "sir_ci_low", "sir_ci_high", "flag", "followup_completeness_percent")},
            }
            record.update(clinics.get(row["group"], {}) if row["grouping"] == "clinic" else {})
            yield record


def _csv(data: dict) -> bytes:
    out = io.StringIO()
    for line in (
        f"version: {data['version']} (schema {data['schema_version']}, publication {data['publication']})",
        f"run: {data['run']}; data cut-off: {data['cutoff_on']}; published: {data['published_at']}",
        f"suppression: {data['suppression_rule']}",
        f"licence: {data['licence']}",
    ):
        out.write(f"# {spreadsheet_cell(line)}\n")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in csv_rows(data):
        writer.writerow({k: "" if v is None else spreadsheet_cell(v) for k, v in record.items()})
    return out.getvalue().encode()


def _json(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=1).encode()


@require_safe
def publication_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """Return the publication's tables as CSV ("#" lines first: version, cut-off, suppression rule, licence)."""
    publication = selectors.publication_public(pk)
    response = _cached_response(request, publication, "csv", "text/csv; charset=utf-8", _csv)
    if response.status_code == 200:
        response["Content-Disposition"] = f'attachment; filename="publication-{publication.pk}.csv"'
    return response


@require_safe
def publication_json(request: HttpRequest, pk: int) -> HttpResponse:
    """Return the publication's tables as JSON (version, cut-off, suppression rule and licence included)."""
    return _cached_response(request, selectors.publication_public(pk), "json", "application/json", _json)
