"""Product-lot clusters: 3 or more events of one category in one lot with onsets at most 30 days apart.

Hand-worked: onsets on days 0, 15 and 30 of one lot lie 30 days apart (an alert); on days 0, 15 and
31 they lie 31 days apart (none). Only counting events count (not retracted, procedure and patient not
retracted, onset on or before the cut-off).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from registry import services as registry_services
from signals.choices import SignalTrigger
from signals.clusters import lot_clusters
from signals.services import signal_run_execute
from tests.signals.conftest import CUTOFF, add_event, make_procedure

pytestmark = pytest.mark.django_db

START = dt.date(2024, 3, 1)


def _events_in_lot(clinic, lot: str, days: list[int], *, category: str = "infection", performed_on=START):
    """Return one event per day offset from START, each on its own procedure of lot ``lot``."""
    events = []
    for day in days:
        procedure = make_procedure(clinic=clinic, product_lot=lot, performed_on=performed_on)
        events.append(add_event(procedure, day + (START - performed_on).days, category=category))
    return events


def test_three_events_with_onsets_30_days_apart_raise_an_alert(clinic_a):
    events = _events_in_lot(clinic_a, "LOT-TIGHT", [0, 15, 30])
    [cluster] = lot_clusters(cutoff_on=CUTOFF)
    assert (cluster.product_lot, cluster.category, cluster.event_count) == ("LOT-TIGHT", "infection", 3)
    assert (cluster.first_onset_on, cluster.last_onset_on) == (START, START + dt.timedelta(days=30))
    assert cluster.event_ids == tuple(e.pk for e in events) and cluster.clinic_ids == (clinic_a.pk,)


def test_three_events_spread_over_31_days_raise_none(clinic_a):
    _events_in_lot(clinic_a, "LOT-SPREAD", [0, 15, 31])
    _events_in_lot(clinic_a, "LOT-CHAIN", [0, 20, 40, 60])  # every 30-day span holds 2 of them
    assert lot_clusters(cutoff_on=CUTOFF) == []


def test_a_cluster_gathers_every_event_of_its_qualifying_spans(clinic_a):
    # Spans from day 0 (0, 10, 25) and from day 10 (10, 25, 38) qualify; day 80 is in none.
    events = _events_in_lot(clinic_a, "LOT-RUN", [0, 10, 25, 38, 80])
    [cluster] = lot_clusters(cutoff_on=CUTOFF)
    assert cluster.event_count == 4 and cluster.event_ids == tuple(e.pk for e in events[:4])
    assert cluster.last_onset_on == START + dt.timedelta(days=38)


def test_only_counting_events_of_one_category_up_to_the_cutoff_count(clinic_a):
    # Two infections and an injection-site reaction: two categories, no cluster.
    _events_in_lot(clinic_a, "LOT-MIXED", [0, 5])
    _events_in_lot(clinic_a, "LOT-MIXED", [10], category="injection_site_reaction")
    # Three events, one retracted.
    kept = _events_in_lot(clinic_a, "LOT-RETRACTED", [0, 5])
    add_event(make_procedure(clinic=clinic_a, product_lot="LOT-RETRACTED", performed_on=START), 10, retracted=True)
    # Three events, the procedure of one retracted (entered in error).
    _events_in_lot(clinic_a, "LOT-GONE", [0, 5])
    gone = _events_in_lot(clinic_a, "LOT-GONE", [10])[0].procedure
    registry_services.procedure_retract(actor=None, procedure=gone, reason="Entered in error.")
    # Three events, the last after the cut-off.
    _events_in_lot(clinic_a, "LOT-LATE", [0, 5, 20])
    assert [c.product_lot for c in lot_clusters(cutoff_on=START + dt.timedelta(days=19))] == []
    assert [c.product_lot for c in lot_clusters(cutoff_on=CUTOFF)] == ["LOT-LATE"]
    assert kept  # the two counting events of LOT-RETRACTED stay, and are not enough


def test_a_lot_used_at_two_clinics_names_both(clinic_a, clinic_b):
    _events_in_lot(clinic_a, "LOT-SHARED", [0, 10])
    _events_in_lot(clinic_b, "LOT-SHARED", [20])
    [cluster] = lot_clusters(cutoff_on=CUTOFF)
    assert cluster.clinic_ids == tuple(sorted((clinic_a.pk, clinic_b.pk))) and cluster.event_count == 3


def test_a_run_stores_its_alerts_and_an_alert_is_new_only_the_first_time(
    clinic_a, clinic_b, reviewers, django_capture_on_commit_callbacks
):
    _events_in_lot(clinic_a, "LOT-TIGHT", [0, 15, 30])
    _events_in_lot(clinic_a, "LOT-SPREAD", [0, 15, 31])
    with django_capture_on_commit_callbacks(execute=True):
        first = signal_run_execute(cutoff_on=CUTOFF, trigger=SignalTrigger.BEAT)
    [alert] = first.lot_alerts.all()
    assert (alert.product_lot, alert.category, alert.event_count, alert.is_new) == ("LOT-TIGHT", "infection", 3, True)
    assert alert.clinic == clinic_a and alert.first_onset_on == START
    assert (first.alert_count, first.new_alert_count) == (1, 1)
    [message] = mail.outbox
    assert "1 new lot-cluster alert" in message.subject
    assert "Lot LOT-TIGHT (clinic A-MAD), Infection: 3 events, onsets 2024-03-01 to 2024-03-31." in message.body

    # The same night again (a command run): the alert stands, not new, no email. A new cluster elsewhere is new.
    _events_in_lot(clinic_b, "LOT-B", [0, 1, 2], category="allergic_reaction")
    with django_capture_on_commit_callbacks(execute=True):
        second = signal_run_execute(cutoff_on=CUTOFF, trigger=SignalTrigger.COMMAND)
    assert {(a.product_lot, a.is_new) for a in second.lot_alerts.all()} == {("LOT-TIGHT", False), ("LOT-B", True)}
    assert len(mail.outbox) == 2 and "LOT-TIGHT" not in mail.outbox[1].body and "LOT-B" in mail.outbox[1].body
