"""The registry's calendar: what "today" means for every rule and report."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings


def today() -> dt.date:
    """Return today's date in the registry's time zone (settings.TIME_ZONE).

    Read straight from the clock in that zone (ZoneInfo caches the zone): the rules call this once
    per imported row, and django.utils.timezone.localdate() costs ~10 us a call through the
    thread-local active time zone, which no request of the registry changes anyway.
    """
    return dt.datetime.now(ZoneInfo(settings.TIME_ZONE)).date()
