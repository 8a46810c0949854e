"""The parameters of one incidence report, validated once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from reports.choices import DEFAULT_STRATA, OUTCOMES, CIMethod, Stratum, Unit

# A risk window: (start day s >= 0, end day e >= s, or None for open), in days after time zero (DESIGN 2b).
Window = tuple[int, int | None]
OPEN: Window = (0, None)


@dataclass(frozen=True)
class IncidenceParams:
    """What to count: strata (in column order), outcomes, the cut-off and the options.

    ``clinic_ids`` None means every clinic; otherwise only units of those clinics
    are read (a clinician's report never sees another clinic's rows).
    ``windows`` holds each outcome's risk window (start day, end day or None), aligned
    with ``outcomes`` (DESIGN 2b): the unit is at risk from T + start to the earliest of
    its observation end and T + end. ``onset_window_days`` N, when set, is the end day
    every outcome was given (kept for the record; ``windows`` already hold it).
    ``unit`` is "procedure" (time zero: the procedure) or "patient" (time zero: the
    patient's first procedure on or before the cut-off).
    """

    cutoff_on: dt.date
    strata: tuple[str, ...] = DEFAULT_STRATA
    outcomes: tuple[str, ...] = OUTCOMES
    onset_window_days: int | None = None
    ci_method: str = CIMethod.WILSON
    clinic_ids: frozenset[int] | None = None
    windows: tuple[Window, ...] = ()
    unit: str = Unit.PROCEDURE

    def __post_init__(self):
        if not self.windows:
            # Direct construction (tests): every window open, or ending at onset_window_days.
            object.__setattr__(self, "windows", tuple((0, self.onset_window_days) for _ in self.outcomes))

    def window(self, outcome: str) -> Window:
        return self.windows[self.outcomes.index(outcome)]

    @property
    def max_start(self) -> int:
        return max((s for s, _ in self.windows), default=0)

    @classmethod
    def build(
        cls,
        *,
        cutoff_on: dt.date,
        strata: Iterable[str] = DEFAULT_STRATA,
        outcomes: Iterable[str] | None = None,
        onset_window_days: int | None = None,
        ci_method: str = CIMethod.WILSON,
        clinic_ids: Iterable[int] | None = None,
        windows: Mapping[str, Window] | None = None,
        unit: str = Unit.PROCEDURE,
    ) -> IncidenceParams:
        """Return validated parameters; outcomes None or empty means every outcome.

        ``windows`` {outcome: (start, end or None)} gives the risk windows (the registry's
        stored definitions); an outcome it does not name, or every outcome when it is None,
        has the open window 0-open. ``onset_window_days`` N then sets every end day to N,
        keeping each start day.
        """
        strata = tuple(str(s) for s in strata)
        chosen = tuple(str(o) for o in outcomes) if outcomes else OUTCOMES
        errors: dict[str, str] = {}
        unknown = [s for s in strata if s not in Stratum.values]
        if unknown:
            errors["strata"] = f"Unknown strata: {', '.join(unknown)}. Choose from {', '.join(Stratum.values)}."
        elif len(set(strata)) != len(strata):
            errors["strata"] = "A stratum may be named only once."
        unknown = [o for o in chosen if o not in OUTCOMES]
        if unknown:
            errors["outcomes"] = f"Unknown outcomes: {', '.join(unknown)}. Choose from {', '.join(OUTCOMES)}."
        if onset_window_days is not None and (isinstance(onset_window_days, bool) or onset_window_days < 0):
            errors["onset_window_days"] = "The onset window is a number of days, 0 or more."
        if ci_method not in CIMethod.values:
            errors["ci_method"] = f"Interval method must be one of {', '.join(CIMethod.values)}."
        if unit not in Unit.values:
            errors["unit"] = f"Unit must be one of {', '.join(Unit.values)}."
        if not isinstance(cutoff_on, dt.date):
            errors["cutoff_on"] = "The data cut-off date must be a date."
        resolved: dict[str, Window] = {}
        for outcome, window in (windows or {}).items():
            try:
                start, end = int(window[0]), None if window[1] is None else int(window[1])
            except (TypeError, ValueError, IndexError):
                errors["windows"] = f"The window of {outcome} must be (start day, end day or open)."
                continue
            if start < 0 or (end is not None and end < start):
                errors["windows"] = f"The window of {outcome} must start on day 0 or later and end on or after it."
            resolved[str(outcome)] = (start, end)
        if errors:
            raise ValidationError(errors)
        # Canonical outcome order, whatever order they were asked in.
        ordered = tuple(o for o in OUTCOMES if o in set(chosen))
        spans = []
        for outcome in ordered:
            start, end = resolved.get(outcome, OPEN)
            if onset_window_days is not None:
                # e = N for every outcome, each s kept: an N below s leaves no unit at risk (B < A).
                end = int(onset_window_days)
            spans.append((start, end))
        return cls(
            cutoff_on=cutoff_on,
            strata=strata,
            outcomes=ordered,
            onset_window_days=onset_window_days,
            ci_method=str(ci_method),
            clinic_ids=None if clinic_ids is None else frozenset(int(c) for c in clinic_ids),
            windows=tuple(spans),
            unit=str(unit),
        )
