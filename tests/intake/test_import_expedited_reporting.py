"""The importer writes past events.services, so it starts the expedited-report clocks of what it wrote itself."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest
from django.apps import apps

from core.dates import today
from events.models import AdverseEvent
from safety import notifications
from safety.models import DueReport
from tests.intake.test_import_registry import GOOD, run, set_cell

pytestmark = pytest.mark.django_db

SHIPPED_RULES = importlib.import_module("safety.migrations.0002_reporting_rules")


@pytest.fixture(autouse=True)
def shipped_rules(db):
    # A transactional test elsewhere flushes the migration's rows; put the shipped rules back.
    SHIPPED_RULES.add_rules(apps, None)


@pytest.fixture
def folder(tmp_path) -> Path:
    return Path(shutil.copytree(GOOD, tmp_path / "import"))


def test_an_imported_serious_unexpected_related_case_gets_its_clock_from_the_import(folder):
    out = run(folder)
    # AE-2: a serious infection (hospitalisation), probably related, not expected by the reference safety
    # information, at a Madrid clinic: ICH E2A, 15 days from the day the registry learned of it.
    due = DueReport.objects.select_related("event", "rule").get()
    assert (due.event.external_id, due.rule.code, due.started_by) == ("AE-2", "ich-e2a-15-day", "initial")
    assert due.clock_start == AdverseEvent.objects.get(external_id="AE-2").aware_on == today()
    assert "expedited-report rules: 1 cases evaluated" in out.splitlines()  # AE-2, the one serious case


def test_a_reimport_of_unchanged_rows_evaluates_nothing_and_makes_no_second_report(folder):
    run(folder)
    out = run(folder)
    assert "expedited-report rules: 0 cases evaluated" in out.splitlines()
    assert DueReport.objects.count() == 1


def test_an_imported_case_made_non_serious_keeps_its_report(folder):
    run(folder)
    set_cell(folder, "adverse_events.csv", 3, "serious", "false")
    set_cell(folder, "adverse_events.csv", 3, "serious_criteria", "")
    set_cell(folder, "adverse_events.csv", 3, "grade", "2")
    run(folder)
    assert not AdverseEvent.objects.get(external_id="AE-2").serious
    assert list(DueReport.objects.values_list("status", flat=True)) == ["open"]


def test_the_reports_an_import_makes_are_announced_in_one_email_per_clinic(
    folder, sam, mailoutbox, django_capture_on_commit_callbacks
):
    sam.email = "sam@registry.example"
    sam.save()
    with django_capture_on_commit_callbacks(execute=True):
        run(folder)
    due = DueReport.objects.get()
    assert due.notified_at is not None and due.reminder_sent_at is None  # due in 15 days: its reminder will come
    assert [(m.to, m.subject) for m in mailoutbox] == [
        (["sam@registry.example"], "[AE registry] 1 expedited reports due after an import (clinic ES-MAD-01)")
    ]
    assert "AE-2" in mailoutbox[0].body and "Reports due" in mailoutbox[0].body
    # Announced: the beat's retry does not send it again one by one.
    assert notifications.due_report_reminders_send(on=today()) == 0
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_summary_is_sent_after_a_real_commit(folder, sam, mailoutbox):
    # The announcement runs after the import's own commit, outside any transaction of the caller.
    sam.email = "sam@registry.example"
    sam.save()
    run(folder)
    assert [m.to for m in mailoutbox] == [["sam@registry.example"]]
    assert DueReport.objects.get().notified_at is not None
