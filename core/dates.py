"""The registry's calendar: what "today" means for every rule and report."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def today() -> dt.date:
    """Return today's date in the registry's time zone (settings.TIME_ZONE)."""
    return timezone.localdate()
