"""Read what the public sees: the page's tables, the CSV and the JSON of a publication, as plain values."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape

DASH = "\u2013"  # the en dash a blank cell prints
BLANK = f"{DASH} not published"


def _text(cell: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())


def html_table(html: str, table_id: str) -> list[list[str]]:
    """Return the rows (body and foot) of table ``table_id`` as cell texts, row header first."""
    match = re.search(rf'<table id="{re.escape(table_id)}"[^>]*>(.*?)</table>', html, re.S)
    assert match, f"no table {table_id}"
    body = match.group(1).split("</thead>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [[_text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)] for r in rows]


def count(text: str):
    """Return a printed count: an int, "<11", or None (blank)."""
    text = text.strip()
    if text in ("", DASH, BLANK):
        return None
    if text == "<11":
        return "<11"
    return int(text)


def html_counts(html: str, outcomes: list[str], groupings: list[str]) -> dict:
    """Return {(outcome, grouping, group): (procedures, observed)} as the page prints them ("total" rows too)."""
    out = {}
    for outcome in outcomes:
        for grouping in groupings:
            for row in html_table(html, f"t-{outcome}-{grouping}"):
                group = label_group(row[0]) if grouping == "gmp" else row[0]
                key = ("total", "ALL") if group == "Total" else (grouping, group)
                out[(outcome, *key)] = (count(row[1]), count(row[2]))
    return out


def json_counts(data: dict) -> dict:
    out = {}
    for o in data["outcomes"]:
        for rows in o["tables"].values():
            for r in rows:
                out[(o["code"], r["grouping"], r["group"])] = (r["procedures"], r["observed"])
        out[(o["code"], "total", "ALL")] = (o["total"]["procedures"], o["total"]["observed"])
    return out


def csv_records(body: bytes) -> tuple[list[str], list[dict]]:
    """Return the "#" lines and the records of a publication's CSV."""
    text = body.decode()
    meta = [line for line in text.splitlines() if line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(line for line in text.splitlines() if not line.startswith("#")))))
    return meta, rows


def csv_counts(rows: list[dict]) -> dict:
    def value(text: str):
        return None if text == "" else ("<11" if text == "<11" else int(text))

    return {(r["outcome"], r["grouping"], r["group"]): (value(r["procedures"]), value(r["observed"])) for r in rows}


def label_group(label: str) -> str:
    return {"GMP certified": "true", "not GMP certified": "false"}.get(label, label)


def read_json(body: bytes) -> dict:
    return json.loads(body)
