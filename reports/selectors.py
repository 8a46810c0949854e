"""Reads of incidence runs, limited to what the requesting user may see.

A run is visible to a user whose clinic scope covers every clinic the run covers:
registry administrators see all runs, a clinician sees the runs limited to their
clinics (their own and their colleagues'), never a registry-wide run.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from registry.selectors import ALL, clinic_scope, limit_to_user_clinics
from reports.models import IncidenceResult, IncidenceRun, RunCurve, RunListingRow


def may_use_reports(user) -> bool:
    """Return True when ``user`` sees at least one clinic, so may start and read incidence runs."""
    scope = clinic_scope(user)
    return scope is ALL or bool(scope)


def runs_for_user(user) -> QuerySet[IncidenceRun]:
    """Return the incidence runs ``user`` may see, newest first."""
    scope = clinic_scope(user)
    runs = IncidenceRun.objects.select_related("requested_by")
    if scope is ALL:
        return runs
    if not scope:
        return runs.none()
    return runs.filter(clinic_ids__isnull=False, clinic_ids__len__gt=0, clinic_ids__contained_by=sorted(scope))


def run_for_user(user, run_id: int) -> IncidenceRun:
    """Return the run ``run_id`` if ``user`` may see it; Http404 otherwise (also when it does not exist)."""
    run = runs_for_user(user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such incidence run.")
    return run


def results_of_run(run: IncidenceRun) -> QuerySet[IncidenceResult]:
    """Return the stored rows of ``run`` in report order (empty unless it succeeded)."""
    return run.results.order_by("position")


def curves_of_run(run: IncidenceRun, *, outcome: str) -> QuerySet[RunCurve]:
    """Return the stored Kaplan-Meier curves of ``outcome`` in ``run``: every finest stratum, then the overall one."""
    return run.curves.filter(outcome=outcome).order_by("position")


def listing_rows_for_user(run: IncidenceRun, user) -> QuerySet[RunListingRow]:
    """Return the stored counted events of ``run`` at the clinics ``user`` may see."""
    return limit_to_user_clinics(RunListingRow.objects.filter(run=run), user, "clinic_id")
