"""Links from a signal or a lot-cluster alert to the adverse-event line listing that lies behind it.

The line listing (reports.exports: /api/v1/exports/adverse-events.csv) is limited to the clinics
the requesting user may see and takes the filters of its view's filter set. A link is made only
when that filter set has a filter for the signal's attribute: an unknown query parameter is ignored
by django-filter, so a link naming a filter that does not exist would silently list every event.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.urls import reverse

from reports.choices import OUTCOME_GRADE_3_PLUS, OUTCOME_SERIOUS
from reports.exports.views import AdverseEventLineListing

LINE_LISTING_URL_NAME = "export-adverse-events-csv"

# The screen's attribute -> the line listing's filter on the same value of the event's procedure.
ATTRIBUTE_FILTERS: dict[str, str] = {
    "cell_type": "cell_type",
    "cell_source": "cell_source",
    "processing": "processing",
    "carrier": "carrier",
    "guidance": "guidance",
    "site": "site",
    "clinic": "clinic",  # the clinic's code
    "country": "country",
    "product_lot": "product_lot",
}


def _has_filter(name: str | None) -> bool:
    return name is not None and name in AdverseEventLineListing.filterset_class.base_filters


def outcome_filters(outcome: str) -> dict[str, str]:
    """Return the line listing's filters selecting the events of ``outcome``."""
    if outcome == OUTCOME_SERIOUS:
        return {"serious": "true"}
    if outcome == OUTCOME_GRADE_3_PLUS:
        return {"grade_min": "3"}
    return {"category": outcome}


def _url(query: dict[str, str]) -> str:
    return reverse(LINE_LISTING_URL_NAME) + "?" + urlencode(query)


def signal_listing_url(*, attribute: str, value: str, outcome: str, cutoff_on: dt.date, run_id: int) -> str | None:
    """Return the line listing of the events behind a signal (onset up to the cut-off), or None when the
    listing cannot filter on ``attribute`` yet."""
    name = ATTRIBUTE_FILTERS.get(attribute)
    if not _has_filter(name):
        return None
    purpose = f"Signal review: {attribute} = {value}, {outcome} (signal run #{run_id})"
    return _url({name: value, **outcome_filters(outcome), "onset_before": cutoff_on.isoformat(), "purpose": purpose})


def alert_listing_url(
    *, product_lot: str, category: str, first_onset_on: dt.date, last_onset_on: dt.date, run_id: int
) -> str | None:
    """Return the line listing of a lot-cluster alert's events, or None while the listing cannot filter on lots."""
    if not _has_filter(ATTRIBUTE_FILTERS["product_lot"]):
        return None
    purpose = f"Lot-cluster review: lot {product_lot}, {category} (signal run #{run_id})"
    return _url(
        {
            "product_lot": product_lot,
            "category": category,
            "onset_after": first_onset_on.isoformat(),
            "onset_before": last_onset_on.isoformat(),
            "purpose": purpose,
        }
    )
