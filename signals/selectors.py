"""Reads of signal runs, and who may read them or is told about them.

Signals are registry-wide (every clinic's data screened together), so they belong to those who
see every clinic: the registry administrators (registry.selectors.is_registry_admin: a
registry_admin membership, or a superuser) and the safety reviewers (DESIGN.md 1: registry-wide
review). A clinician or coordinator sees nothing of them.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404

from registry.choices import Role
from registry.selectors import is_registry_admin, is_safety_reviewer
from signals.choices import SignalRunStatus
from signals.models import LotClusterAlert, SignalReview, SignalRow, SignalRun

SAFETY_REVIEWER_ROLE = Role.SAFETY_REVIEWER


def may_review_signals(user) -> bool:
    """Return True when ``user`` may see the Signals page and mark signals reviewed."""
    return is_registry_admin(user) or is_safety_reviewer(user)


def signal_recipients() -> list[str]:
    """Return the addresses the news of a run goes to: the safety reviewers, else the registry administrators.

    Active users with an address only. While nobody holds the safety reviewer role the
    registry administrators are told: users with a registry_admin membership and superusers,
    exactly those registry.selectors.is_registry_admin says see every clinic.
    """
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    reviewers = users.filter(memberships__role=SAFETY_REVIEWER_ROLE)
    chosen = (
        reviewers
        if reviewers.exists()
        else users.filter(Q(is_superuser=True) | Q(memberships__role=Role.REGISTRY_ADMIN))
    )
    return sorted(set(chosen.values_list("email", flat=True)))


def runs_for_user(user) -> QuerySet[SignalRun]:
    """Return the signal runs ``user`` may see (all for a reviewer, none for anyone else), newest first."""
    runs = SignalRun.objects.select_related("requested_by").order_by("-finished_at", "-id")
    return runs if may_review_signals(user) else runs.none()


MAX_ID = 2**63 - 1  # a bigint: a larger id names no row (and must not reach the database)


def parse_id(text) -> int | None:
    """Return ``text`` as a row id (ASCII digits, within a bigint), or None."""
    text = str(text)
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


def run_for_user(user, run_id) -> SignalRun:
    """Return the run ``run_id`` if ``user`` may see it; Http404 otherwise (also when it does not exist)."""
    pk = parse_id(run_id)
    run = runs_for_user(user).filter(pk=pk).first() if pk is not None else None
    if run is None:
        raise Http404("No such signal run.")
    return run


def latest_succeeded_run(user) -> SignalRun | None:
    """Return the newest succeeded run ``user`` may see, or None."""
    return runs_for_user(user).filter(status=SignalRunStatus.SUCCEEDED).first()


def previous_succeeded_run() -> SignalRun | None:
    """Return the newest succeeded run (the one a new run's "what is new" compares with), or None."""
    return SignalRun.objects.filter(status=SignalRunStatus.SUCCEEDED).order_by("-finished_at", "-id").first()


def signal_keys(run: SignalRun | None) -> set[tuple[str, str, str]]:
    """Return the (attribute, value, outcome) of every signal (either kind) of ``run``."""
    if run is None:
        return set()
    rows = run.rows.filter(Q(signal=True) | Q(evans_signal=True))
    return set(rows.values_list("attribute", "value", "outcome"))


def alert_keys(run: SignalRun | None) -> set[tuple[str, str]]:
    """Return the (product lot, category) of every lot-cluster alert of ``run``."""
    if run is None:
        return set()
    return set(run.lot_alerts.values_list("product_lot", "category"))


def signals_of_run(run: SignalRun) -> QuerySet[SignalRow]:
    """Return the signals (either kind) of ``run``: new ones first, then by attribute, value and outcome."""
    return run.rows.filter(Q(signal=True) | Q(evans_signal=True)).order_by(
        "-is_new", "attribute", "value", "outcome", "position"
    )


def alerts_of_run(run: SignalRun) -> QuerySet[LotClusterAlert]:
    """Return the lot-cluster alerts of ``run``: new ones first."""
    return run.lot_alerts.select_related("clinic").order_by("-is_new", "product_lot", "category")


def reviews_by_key(keys) -> dict[tuple[str, str, str], list[SignalReview]]:
    """Return the reviews of each (attribute, value, outcome) of ``keys``, newest first."""
    keys = set(keys)
    if not keys:
        return {}
    match = Q()
    for attribute, value, outcome in keys:
        match |= Q(attribute=attribute, value=value, outcome=outcome)
    found: dict[tuple[str, str, str], list[SignalReview]] = defaultdict(list)
    for review in (
        SignalReview.objects.filter(match).select_related("reviewed_by", "row").order_by("-reviewed_at", "-id")
    ):
        found[(review.attribute, review.value, review.outcome)].append(review)
    return dict(found)
