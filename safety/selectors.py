"""Read paths of expedited reporting, limited by registry.selectors: clinic staff see their clinics,
registry administrators and safety reviewers every clinic. A row a user may not see answers 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Aggregate, Count, F, FloatField, Func, IntegerField, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404

from core.dates import today
from events.choices import CaseStatus
from events.models import AdverseEvent
from events.selectors import adverse_events_for_user
from registry import selectors as registry_selectors
from registry.models import Clinic
from safety.choices import STALE_CASE_DAYS, DueReportStatus
from safety.models import DueReport, ReportingRule, Submission

MAX_ID = 2**63 - 1


def parse_id(value) -> int | None:
    """Return ``value`` as a row id, or None when it names no row (not a number, or beyond a bigint)."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        return None
    return int(text)


def may_manage_rules(user) -> bool:
    """Return True when ``user`` may add and change reporting rules (registry administrators)."""
    return registry_selectors.is_registry_admin(user)


def may_read_rules(user) -> bool:
    """Return True when ``user`` may read the reporting rules (administrators and safety reviewers)."""
    return may_manage_rules(user) or registry_selectors.is_safety_reviewer(user)


def may_withdraw(user) -> bool:
    """Return True when ``user`` may withdraw a due report (administrators and safety reviewers)."""
    return may_read_rules(user)


def may_record_submission(user, due: DueReport) -> bool:
    """Return True when ``user`` may record the submission of ``due``.

    The clinic's clinicians and coordinators and registry administrators (who write the clinic's
    data), and safety reviewers (who often send the report themselves).
    """
    clinic_id = due.event.procedure.clinic_id
    return registry_selectors.can_write_clinic(user, clinic_id) or registry_selectors.is_safety_reviewer(user)


def sees_any_clinic(user) -> bool:
    """Return True when ``user`` may see some clinic's due reports."""
    return registry_selectors.clinic_scope(user) != frozenset()


def due_reports_for_user(user) -> QuerySet[DueReport]:
    """Return the due reports ``user`` may see, soonest due first."""
    rows = DueReport.objects.select_related("event__procedure__clinic", "rule", "follow_up", "submission")
    return registry_selectors.limit_to_user_clinics(rows, user, "event__procedure__clinic_id").order_by("due_on", "id")


def due_report_for_user(user, due_report_id) -> DueReport:
    """Return the due report ``due_report_id`` if ``user`` may see it; else raise Http404."""
    pk = parse_id(due_report_id)
    due = due_reports_for_user(user).filter(pk=pk).first() if pk is not None else None
    if due is None:
        raise Http404("No such due report.")
    return due


def event_for_user(user, event_id) -> AdverseEvent:
    """Return the adverse event ``event_id`` if ``user`` may see it; else raise Http404."""
    pk = parse_id(event_id)
    event = adverse_events_for_user(user).filter(pk=pk).first() if pk is not None else None
    if event is None:
        raise Http404("No such adverse event.")
    return event


def is_overdue(due: DueReport, *, on: dt.date | None = None) -> bool:
    """Return True when ``due`` is open past its due date."""
    return due.status == DueReportStatus.OPEN and due.due_on < (on or today())


def rules_for_user(user) -> QuerySet[ReportingRule]:
    """Return the reporting rules ``user`` may read."""
    return ReportingRule.objects.all() if may_read_rules(user) else ReportingRule.objects.none()


# --- Figures


class _Median(Aggregate):
    """The median (PostgreSQL percentile_cont(0.5)), an aggregate so GROUP BY leaves its input out."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


class _DaysBetween(Func):
    """The calendar days from the second date to the first (PostgreSQL date - date is an integer)."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = IntegerField()


@dataclass
class Figures:
    clinic: Clinic | None  # None: every clinic the user sees
    events: int = 0
    median_onset_to_recording: float | None = None
    submissions: int = 0
    median_awareness_to_submission: float | None = None
    on_time: int = 0
    open_overdue: int = 0
    stale_open_cases: int = 0

    @property
    def on_time_share(self) -> float | None:
        """Return the share of submitted expedited reports that went in by their due date (None: none submitted)."""
        return self.on_time / self.submissions if self.submissions else None


def safety_figures(user, *, clinic_id: int | None = None, on: dt.date | None = None) -> list[Figures]:
    """Return the figures per clinic ``user`` sees (one clinic when ``clinic_id``), then their total.

    Median days from onset to recording (the date the event was recorded), median days from
    awareness to submission, the share of submitted expedited reports submitted on time, open
    reports past due, and open cases aware for more than STALE_CASE_DAYS days without a follow-up.
    Retracted events count nowhere.
    """
    clinics = registry_selectors.clinics_for_user(user)
    if clinic_id is not None:
        clinics = clinics.filter(pk=clinic_id)
    return clinic_safety_figures(clinics, on=on)


def clinic_safety_figures(clinics: QuerySet[Clinic], *, on: dt.date | None = None) -> list[Figures]:
    """Return the figures of ``clinics`` (by code), then their total (safety_figures() for a user's clinics;
    reports.snapshot for a run's)."""
    on = on or today()
    clinic_list = list(clinics.order_by("code"))
    ids = [clinic.pk for clinic in clinic_list]
    events = AdverseEvent.objects.active().filter(procedure__clinic_id__in=ids)
    onset = _DaysBetween(TruncDate("recorded_at"), F("onset_on"))
    submissions = Submission.objects.filter(due_report__event__in=events, due_report__status=DueReportStatus.SUBMITTED)
    # From the awareness date of the information that started the clock (the event's, a follow-up's
    # or a review's): what the regulator's clock measures.
    submitted = _DaysBetween(F("submitted_on"), F("due_report__clock_start"))
    stale = events.filter(
        case_status=CaseStatus.OPEN, aware_on__lt=on - dt.timedelta(days=STALE_CASE_DAYS), follow_ups__isnull=True
    )
    overdue = DueReport.objects.filter(event__in=events, status=DueReportStatus.OPEN, due_on__lt=on)

    def collect(by_clinic: bool) -> dict:
        def grouped(qs, path: str, **aggregates):
            if not by_clinic:
                return {None: qs.aggregate(**aggregates)}
            rows = qs.annotate(clinic_key=F(path)).values("clinic_key").annotate(**aggregates).order_by()
            return {row.pop("clinic_key"): row for row in rows}

        clinic = "procedure__clinic_id"
        return {
            "events": grouped(events, clinic, n=Count("id"), median=_Median(onset)),
            "subs": grouped(
                submissions,
                "due_report__event__" + clinic,
                n=Count("id"),
                median=_Median(submitted),
                on_time=Count("id", filter=Q(late=False)),
            ),
            "stale": grouped(stale, clinic, n=Count("id", distinct=True)),
            "overdue": grouped(overdue, "event__" + clinic, n=Count("id")),
        }

    def figures(clinic, data, key) -> Figures:
        ev, subs = data["events"].get(key, {}), data["subs"].get(key, {})
        return Figures(
            clinic=clinic,
            events=ev.get("n") or 0,
            median_onset_to_recording=ev.get("median"),
            submissions=subs.get("n") or 0,
            median_awareness_to_submission=subs.get("median"),
            on_time=subs.get("on_time") or 0,
            open_overdue=(data["overdue"].get(key) or {}).get("n") or 0,
            stale_open_cases=(data["stale"].get(key) or {}).get("n") or 0,
        )

    per, total = collect(True), collect(False)
    rows = [figures(clinic, per, clinic.pk) for clinic in clinic_list]
    return [*rows, figures(None, total, None)]
