"""Writes of expedited reporting: evaluate a case against the rules, record a submission, withdraw a due report.

case_evaluate runs inside the transaction that changed the case (the events.hooks.case_changed
receiver), so a due report appears with the change or not at all; its email leaves after the commit.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.audit import audit_context
from core.dates import today
from core.tasks import publish_by_name
from events import selectors as event_selectors
from events.choices import CaseStatus
from events.models import AdverseEvent, FollowUpReport, MedicalReview
from safety import notifications, selectors
from safety.choices import REEVALUATE_TASK, DueReportStatus, StartedBy
from safety.facts import case_facts, rule_met
from safety.models import CaseRuleState, DueReport, ReportingRule, Submission

RETRACTED_REASON = "The adverse event was retracted: {reason}"
EVALUATE_CHUNK = 2000  # cases judged per prefetched chunk by cases_evaluate


def _initial_clocks_follow_awareness(event: AdverseEvent) -> None:
    """Move the open due reports the initial report started when its awareness date is corrected.

    The clock runs from when the clinic learned of the event; a corrected date moves the due date
    with it (earlier or later) and re-arms the reminder. Audited: the caller's context names the change.
    """
    stale = DueReport.objects.filter(event=event, status=DueReportStatus.OPEN, started_by=StartedBy.INITIAL).exclude(
        clock_start=event.aware_on
    )
    for due in stale.select_related("rule"):
        due.clock_start = event.aware_on
        due.due_on = event.aware_on + dt.timedelta(days=due.rule.clock_days)
        due.reminder_sent_at = None
        due.save(update_fields=["clock_start", "due_on", "reminder_sent_at"])


def _clock(
    event: AdverseEvent, reason: str, follow_up: FollowUpReport | None, review: MedicalReview | None
) -> tuple[dt.date, str]:
    """Return (clock start, what started it): the awareness date of the information that made the case reportable.

    An edit of the event (not a follow-up) corrects the initial report: its clock runs from awareness.
    """
    if reason == "follow_up" and follow_up is not None:
        return follow_up.received_on, StartedBy.FOLLOW_UP
    if reason == "review" and review is not None:
        return timezone.localdate(review.reviewed_at), StartedBy.REVIEW
    return event.aware_on, StartedBy.INITIAL


def _met_rules(event: AdverseEvent, review: MedicalReview | None, rules: list[ReportingRule]) -> set[int]:
    """Return the ids of the rules the case meets now, a rule superseded by one met or already owed left out."""
    facts = case_facts(event, review)
    met = {rule.pk for rule in rules if rule_met(rule, facts)}
    owed = set(
        DueReport.objects.filter(event=event)
        .exclude(status=DueReportStatus.WITHDRAWN)
        .values_list("rule_id", flat=True)
    )
    stricter: dict[int, set[int]] = {}
    for rule in rules:
        if rule.supersedes_id is not None:
            stricter.setdefault(rule.supersedes_id, set()).add(rule.pk)
    return {pk for pk in met if not stricter.get(pk, set()) & (met | owed)}


def _withdraw_open(event: AdverseEvent, reason: str) -> None:
    DueReport.objects.filter(event=event, status=DueReportStatus.OPEN).update(
        status=DueReportStatus.WITHDRAWN, withdrawn_at=timezone.now(), withdrawn_reason=reason
    )
    CaseRuleState.objects.filter(event=event).update(met=False)


def case_evaluate(
    *,
    event: AdverseEvent,
    actor=None,
    reason: str = "changed",
    follow_up: FollowUpReport | None = None,
    review: MedicalReview | None = None,
    notify: bool = True,
) -> list[DueReport]:
    """Return the due reports the change made newly due, after evaluating every active rule on the case.

    ``notify``: announce each new due report by email after the commit (False: the caller announces
    them together, as cases_evaluate does for an import).

    A rule is newly met when the case meets it now and did not at its last evaluation; it then gets
    an open due report (one per case and rule) with the clock of _clock(). A downgrade keeps every
    due report (an open one stays open). A retracted case's open due reports are withdrawn.
    """
    with transaction.atomic(), audit_context(actor, "safety_case_evaluate"):
        # The event's row lock serialises evaluations of one case (events.services holds it already).
        event = (
            AdverseEvent.objects.select_for_update(of=("self",)).select_related("procedure__clinic").get(pk=event.pk)
        )
        if event.retracted_at is not None:
            _withdraw_open(event, RETRACTED_REASON.format(reason=event.retraction_reason or "no reason given"))
            return []
        rules = list(ReportingRule.objects.filter(active=True).order_by("id"))
        met = _met_rules(event, review, rules)
        states = {state.rule_id: state for state in CaseRuleState.objects.filter(event=event)}
        open_rules = set(
            DueReport.objects.filter(event=event, status=DueReportStatus.OPEN).values_list("rule_id", flat=True)
        )
        if reason == "changed":
            _initial_clocks_follow_awareness(event)
        clock_start, started_by = _clock(event, reason, follow_up, review)
        created, new_states, flipped = [], [], {True: [], False: []}
        for rule in rules:
            now_met = rule.pk in met
            state = states.get(rule.pk)
            if now_met and not (state is not None and state.met) and rule.pk not in open_rules:
                created.append(_due_report_create(event, rule, clock_start, started_by, follow_up, review))
            if state is None:
                new_states.append(CaseRuleState(event=event, rule=rule, met=now_met))
            elif state.met != now_met:
                flipped[now_met].append(state.pk)
        CaseRuleState.objects.bulk_create(new_states)
        for now_met, ids in flipped.items():
            if ids:
                CaseRuleState.objects.filter(pk__in=ids).update(met=now_met, evaluated_at=timezone.now())
        for due in created if notify else ():
            transaction.on_commit(partial(notifications.due_report_notify, due_report_id=due.pk))
        return created


def cases_evaluate(*, events: QuerySet[AdverseEvent], actor=None, reason: str = "changed") -> int:
    """Return how many of the cases ``events`` were judged against the active rules (see case_evaluate).

    For writes that bypass events.services (the CSV importer), in the caller's transaction. While
    every active rule needs a serious case or a communicable disease only such cases (or cases a
    reviewer assessed) can meet one. They are judged a chunk at a time from prefetched rows; only a
    case that meets a rule now, or met one at its last evaluation, goes through case_evaluate (a
    case that meets nothing and never did needs no row), so a large import stays cheap. The due
    reports it makes are announced after the commit in one email per clinic, not one each.
    """
    rules = list(ReportingRule.objects.filter(active=True))
    if not rules:
        return 0
    events = events.filter(retracted_at__isnull=True)
    if all(rule.requires_serious or rule.requires_communicable_disease for rule in rules):
        events = events.filter(Q(serious=True) | Q(communicable_disease=True) | Q(reviews__isnull=False)).distinct()
    candidates = list(events.order_by("pk").values_list("pk", flat=True))
    was_met = set(CaseRuleState.objects.filter(event_id__in=candidates, met=True).values_list("event_id", flat=True))
    rsi_entries = list(event_selectors.active_reference_safety_information())
    made: list[DueReport] = []
    for start in range(0, len(candidates), EVALUATE_CHUNK):
        chunk = event_selectors.with_reviews(
            AdverseEvent.objects.filter(pk__in=candidates[start : start + EVALUATE_CHUNK])
            .select_related("procedure__clinic")
            .order_by("pk")
        )
        for event in chunk:
            facts = case_facts(event, rsi_entries=rsi_entries)
            if event.pk in was_met or any(rule_met(rule, facts) for rule in rules):
                made += case_evaluate(event=event, actor=actor, reason=reason, notify=False)
    if made:
        ids = [due.pk for due in made]
        transaction.on_commit(partial(notifications.due_reports_summary_notify, due_report_ids=ids))
    return len(candidates)


def _due_report_create(event, rule, clock_start, started_by, follow_up, review) -> DueReport:
    due = DueReport(
        event=event,
        rule=rule,
        clock_start=clock_start,
        due_on=clock_start + dt.timedelta(days=rule.clock_days),
        started_by=started_by,
        follow_up=follow_up if started_by == StartedBy.FOLLOW_UP else None,
        review=review if started_by == StartedBy.REVIEW else None,
        recipient=rule.recipient,
        form=rule.form,
    )
    due.full_clean()
    due.save()
    return due


def on_case_changed(sender, *, event, actor=None, reason="changed", follow_up=None, review=None, **kwargs) -> None:
    """Receive events.hooks.case_changed: evaluate the case (connected in SafetyConfig.ready())."""
    case_evaluate(event=event, actor=actor, reason=reason, follow_up=follow_up, review=review)


def submission_record(*, actor, due_report: DueReport, submitted_on: dt.date, reference_number: str) -> Submission:
    """Return the submission recorded for ``due_report``, which it closes; a submission after the due date is late.

    The date is not in the future and not before the clock started; the due report must be open.
    """
    if not selectors.may_record_submission(actor, due_report):
        raise PermissionDenied("You may not record submissions of this clinic's reports.")
    with transaction.atomic(), audit_context(actor, "submission_record"):
        due = DueReport.objects.select_for_update().get(pk=due_report.pk)
        if due.status != DueReportStatus.OPEN:
            raise ValidationError(f"This report is {due.get_status_display().lower()} already.")
        if submitted_on > today():
            raise ValidationError({"submitted_on": "The submission date cannot be in the future."})
        if submitted_on < due.clock_start:
            started = f"{due.clock_start:%Y-%m-%d}"
            raise ValidationError(
                {"submitted_on": f"The submission date cannot be before the clock started ({started})."}
            )
        submission = Submission(
            due_report=due,
            submitted_on=submitted_on,
            reference_number=(reference_number or "").strip(),
            submitted_by=actor,
            late=submitted_on > due.due_on,
        )
        submission.full_clean()
        submission.save()
        due.status = DueReportStatus.SUBMITTED
        due.save(update_fields=["status"])
    return submission


def due_report_withdraw(*, actor, due_report: DueReport, reason: str) -> DueReport:
    """Return the due report withdrawn with ``reason`` (registry administrators and safety reviewers only).

    For a report that is not owed after all (e.g. a downgraded case a reviewer judges not reportable).
    """
    if not selectors.may_withdraw(actor):
        raise PermissionDenied("Only registry administrators and safety reviewers withdraw due reports.")
    with transaction.atomic(), audit_context(actor, "due_report_withdraw"):
        due = DueReport.objects.select_for_update().get(pk=due_report.pk)
        if due.status != DueReportStatus.OPEN:
            raise ValidationError(f"This report is {due.get_status_display().lower()} already.")
        due.status, due.withdrawn_at, due.withdrawn_reason = DueReportStatus.WITHDRAWN, timezone.now(), reason.strip()
        if not due.withdrawn_reason:
            raise ValidationError({"withdrawn_reason": "Say why the report is not owed."})
        due.full_clean()
        due.save(update_fields=["status", "withdrawn_at", "withdrawn_reason"])
    return due


def reporting_rule_save(*, actor, rule: ReportingRule) -> ReportingRule:
    """Return the reporting rule, validated and saved (registry administrators; history kept by pghistory)."""
    if actor is not None and not selectors.may_manage_rules(actor):
        raise PermissionDenied("Only registry administrators edit reporting rules.")
    with transaction.atomic(), audit_context(actor, "reporting_rule_save"):
        rule.full_clean()
        rule.save()
        if rule.active:
            # A new, widened or re-activated rule applies to the open cases now, not at their next change;
            # judged by a Celery task (a large registry takes longer than a request should).
            transaction.on_commit(_reevaluation_publish)
    return rule


def _reevaluation_publish() -> None:
    """Queue the re-evaluation of the open cases (the nightly beat entry safety-reevaluate-open-cases does the
    same work should the broker be unreachable now)."""
    publish_by_name(REEVALUATE_TASK, what="The re-evaluation of the open cases")


def open_cases_reevaluate() -> int:
    """Return how many open cases were judged against the active rules (after a rule changed).

    Through cases_evaluate: set-wise, one summary email per clinic. A case a rule newly catches owes its
    report from its awareness date (it was reportable under that rule since then: conservative, and an
    overdue report shows at once on the Reports due page).
    """
    with transaction.atomic(), audit_context(None, "open_cases_reevaluate"):
        return cases_evaluate(events=AdverseEvent.objects.filter(case_status=CaseStatus.OPEN), reason="changed")
