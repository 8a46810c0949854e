"""Return the public pages' figures as text: a count, "<11", or a blank that says it is not published."""

from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# A constant (no data in it): a dash, and words for a screen reader.
BLANK = mark_safe('<span class="blank">&ndash;<span class="visually-hidden"> not published</span></span>')


@register.filter
def count(value):
    """Return a count as printed: the number, "<11" (a count from 1 to 10), or a blank (protecting another)."""
    if value is None:
        return BLANK
    return value


@register.filter
def decimal(value, digits=2):
    """Return a figure with ``digits`` decimals, or a blank when it is not published."""
    if value is None:
        return BLANK
    return f"{value:.{int(digits)}f}"


@register.filter
def sir(row):
    """Return "SIR (low to high)" of a row, or a blank."""
    if row.get("sir") is None:
        return BLANK
    if row.get("sir_ci_low") is None:
        return f"{row['sir']:.2f}"
    return f"{row['sir']:.2f} ({row['sir_ci_low']:.2f} to {row['sir_ci_high']:.2f})"


@register.filter
def percent(value):
    """Return a whole percentage, or a blank (too few follow-up visits to show)."""
    if value is None:
        return BLANK
    return f"{value} %"
