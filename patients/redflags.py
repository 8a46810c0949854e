"""The patient guide's warning signs, read from what a patient sends (DESIGN 1: infection shows as warmth
or spreading redness after 48 hours, fever, discharge; nerve damage near the spine; pain that gets worse).

"After 48 hours" is day 2 or later (day 0 is the procedure's day): the reactions of the first two days
are expected and fade. Each rule is written once here and used for diary days and problem reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from patients.choices import RedFlag
from registry.choices import Site

FEVER_C = Decimal("38.0")
SEVERE_PAIN = 7
AFTER_48H_DAY = 2
SPINE_SITES = frozenset({Site.SPINE})


def red_flags(report, *, day: int, site: str, earlier: Iterable = ()) -> list[str]:
    """Return the red-flag codes of ``report`` (a PatientReport, saved or not) sent on ``day`` after a
    procedure at ``site``; ``earlier``: the procedure's diary days before it (for "spreading", "worse").

    - warmth on day 2 or later;
    - redness on day 2 or later that is new (no redness earlier) or spreads further than on any earlier day;
    - a measured temperature of 38.0 C or more;
    - discharge;
    - new weakness or numbness after a spine injection;
    - pain of 7 or more on day 2 or later that is worse than on an earlier day.
    """
    earlier = list(earlier)
    late = day >= AFTER_48H_DAY
    flags = []
    if late and report.warmth:
        flags.append(RedFlag.WARMTH)
    if late and report.redness:
        before = [e.redness_cm or Decimal(0) for e in earlier if e.redness]
        if not before or (report.redness_cm is not None and report.redness_cm > max(before)):
            flags.append(RedFlag.REDNESS)
    if report.temperature_c is not None and report.temperature_c >= FEVER_C:
        flags.append(RedFlag.FEVER)
    if report.discharge:
        flags.append(RedFlag.DISCHARGE)
    if report.weakness_numbness and site in SPINE_SITES:
        flags.append(RedFlag.NEURO)
    worse = report.pain is not None and any(e.pain is not None and e.pain < report.pain for e in earlier)
    if late and worse and report.pain >= SEVERE_PAIN:
        flags.append(RedFlag.PAIN)
    return [str(flag) for flag in flags]
