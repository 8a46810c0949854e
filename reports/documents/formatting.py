"""Numbers for people: what the report page and the PDF print (the XLSX and CSV keep full precision).

- a share (proportion, cumulative incidence) as a percent with one decimal: 0.1234 -> "12.3 %";
- a rate, a ratio or an expected count to three significant figures, never in scientific
  notation: 36512.3 -> "36500", 0.000123456 -> "0.000123", 1.23456 -> "1.23";
- an interval as "estimate (low to high)";
- an empty figure (None or NaN) as "-", unless the caller says why it is empty.
"""

from __future__ import annotations

import math
from decimal import Decimal

EMPTY = "-"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def significant(value, digits: int = 3) -> str:
    """Return ``value`` rounded to ``digits`` significant figures in plain decimal notation."""
    if _missing(value):
        return EMPTY
    if isinstance(value, bool):
        raise TypeError("A boolean is not a number to format.")
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    if value == 0:
        return "0"
    # "%g" rounds to the significant figures (and drops trailing zeros); Decimal writes it out without
    # an exponent: 3.65e+04 -> 36500, 1.23e-04 -> 0.000123.
    text = format(Decimal(f"{value:.{digits}g}"), "f")
    return "0" if text in ("-0", "0") else text


def percent(share, decimals: int = 1) -> str:
    """Return the share ``share`` (0 to 1) as a percent with ``decimals`` decimals: 0.1234 -> "12.3 %"."""
    if _missing(share):
        return EMPTY
    return f"{share * 100:.{decimals}f} %"


def percent_number(share, decimals: int = 1) -> str:
    """Return ``share`` as a percent without the sign (for columns headed "%"): 0.1234 -> "12.3"."""
    if _missing(share):
        return EMPTY
    return f"{share * 100:.{decimals}f}"


def count(value) -> str:
    """Return an integer count with thousands separators: 1234567 -> "1,234,567"."""
    if _missing(value):
        return EMPTY
    return f"{int(value):,}"


def days(value) -> str:
    """Return a number of days with one decimal (a median may fall between two days): 2.5 -> "2.5"."""
    if _missing(value):
        return EMPTY
    return f"{value:.1f}"


def safety_figure_cells(figure) -> list[str]:
    """Return a RunSafetyFigure as the page's and the PDF's cells (clinic, events, medians, submissions...)."""
    return [
        figure.clinic_code or "all clinics",
        count(figure.events),
        days(figure.median_onset_to_recording),
        count(figure.submissions),
        days(figure.median_awareness_to_submission),
        percent(figure.on_time_share),
        count(figure.open_overdue),
        count(figure.stale_open_cases),
    ]


SAFETY_FIGURE_HEADER = [
    "clinic",
    "events",
    "median days onset to recording",
    "expedited reports submitted",
    "median days awareness to submission",
    "submitted on time",
    "open reports overdue",
    "open cases > 30 days without follow-up",
]


def person_years(value) -> str:
    """Return person-years with one decimal and thousands separators: 1234.56 -> "1,234.6"."""
    if _missing(value):
        return EMPTY
    return f"{value:,.1f}"


def with_interval(value, low, high, *, fmt=significant) -> str:
    """Return "value (low to high)" with ``fmt`` applied to each; "-" when the value is empty."""
    if _missing(value):
        return EMPTY
    if _missing(low) or _missing(high):
        return fmt(value)
    return f"{fmt(value)} ({fmt(low)} to {fmt(high)})"


def percent_interval(value, low, high) -> str:
    """Return "12.3 % (8.1 to 17.9 %)" for shares (0 to 1)."""
    if _missing(value):
        return EMPTY
    if _missing(low) or _missing(high):
        return percent(value)
    return f"{percent(value)} ({percent_number(low)} to {percent(high)})"


def p_value(value) -> str:
    """Return a p-value to two significant figures, "<0.0001" below that."""
    if _missing(value):
        return EMPTY
    if value < 0.0001:
        return "<0.0001"
    return significant(value, 2)
