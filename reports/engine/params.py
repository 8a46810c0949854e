"""The parameters of one incidence report, validated once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from reports.choices import DEFAULT_STRATA, OUTCOMES, CIMethod, Stratum


@dataclass(frozen=True)
class IncidenceParams:
    """What to count: strata (in column order), outcomes, the cut-off and the options.

    ``clinic_ids`` None means every clinic; otherwise only procedures of those clinics
    are read (a clinician's report never sees another clinic's rows).
    ``onset_window_days`` N, when set, lets only events with
    ``onset_on - performed_on <= N`` qualify for a case (observation time is unchanged).
    """

    cutoff_on: dt.date
    strata: tuple[str, ...] = DEFAULT_STRATA
    outcomes: tuple[str, ...] = OUTCOMES
    onset_window_days: int | None = None
    ci_method: str = CIMethod.WILSON
    clinic_ids: frozenset[int] | None = None

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
    ) -> IncidenceParams:
        """Return validated parameters; outcomes None or empty means every outcome."""
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
        if onset_window_days is not None and onset_window_days < 0:
            errors["onset_window_days"] = "The onset window is a number of days, 0 or more."
        if ci_method not in CIMethod.values:
            errors["ci_method"] = f"Interval method must be one of {', '.join(CIMethod.values)}."
        if not isinstance(cutoff_on, dt.date):
            errors["cutoff_on"] = "The data cut-off must be a date."
        if errors:
            raise ValidationError(errors)
        # Canonical outcome order, whatever order they were asked in.
        ordered = tuple(o for o in OUTCOMES if o in set(chosen))
        return cls(
            cutoff_on=cutoff_on,
            strata=strata,
            outcomes=ordered,
            onset_window_days=onset_window_days,
            ci_method=str(ci_method),
            clinic_ids=None if clinic_ids is None else frozenset(int(c) for c in clinic_ids),
        )
