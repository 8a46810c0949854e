"""Product-lot clusters: 3 or more events of one category in one lot with onsets at most 30 days apart.

One SQL statement over the counting events (not retracted; procedure and patient not retracted;
procedure performed and onset on or before the cut-off; a product lot recorded). Each event opens a
30-day span [onset, onset + 30]; a span holding LOT_CLUSTER_MIN_EVENTS or more events of its lot and
category qualifies, and the alert of that lot and category gathers the events of its qualifying spans.
Only the alerts (a handful of rows) come back to Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection

from events.models import AdverseEvent
from registry.models import Patient, Procedure
from signals.choices import LOT_CLUSTER_DAYS, LOT_CLUSTER_MIN_EVENTS


@dataclass(frozen=True)
class LotCluster:
    product_lot: str
    category: str
    clinic_ids: tuple[int, ...]
    event_count: int
    first_onset_on: dt.date
    last_onset_on: dt.date
    event_ids: tuple[int, ...]


def _sql() -> str:
    events, procedures, patients = (m._meta.db_table for m in (AdverseEvent, Procedure, Patient))
    return f"""
        WITH counting AS (
            SELECT e.id, e.category, e.onset_on, p.product_lot, p.clinic_id,
                   (e.onset_on - DATE '2000-01-01') AS onset_day
              FROM {events} e
              JOIN {procedures} p ON p.id = e.procedure_id
              JOIN {patients} pt ON pt.id = p.patient_id
             WHERE e.retracted_at IS NULL AND p.retracted_at IS NULL AND pt.retracted_at IS NULL
               AND p.product_lot <> ''
               AND p.performed_on <= %(cutoff)s AND e.onset_on <= %(cutoff)s
        ),
        spans AS (
            SELECT product_lot, category, onset_day AS start_day,
                   count(*) OVER (
                       PARTITION BY product_lot, category ORDER BY onset_day
                       RANGE BETWEEN CURRENT ROW AND %(days)s FOLLOWING
                   ) AS n
              FROM counting
        ),
        qualifying AS (
            SELECT DISTINCT product_lot, category, start_day FROM spans WHERE n >= %(min_events)s
        ),
        clustered AS (
            SELECT DISTINCT c.id, c.product_lot, c.category, c.onset_on, c.clinic_id
              FROM counting c
              JOIN qualifying q
                ON q.product_lot = c.product_lot AND q.category = c.category
               AND c.onset_day BETWEEN q.start_day AND q.start_day + %(days)s
        )
        SELECT product_lot, category,
               array_agg(DISTINCT clinic_id ORDER BY clinic_id),
               count(*), min(onset_on), max(onset_on),
               array_agg(id ORDER BY onset_on, id)
          FROM clustered
         GROUP BY product_lot, category
         ORDER BY product_lot, category
    """  # noqa: S608 - table names from the models; values are bound


def lot_clusters(*, cutoff_on: dt.date) -> list[LotCluster]:
    """Return the product-lot clusters of the counting events up to ``cutoff_on``, by lot and category."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(), {"cutoff": cutoff_on, "days": LOT_CLUSTER_DAYS, "min_events": LOT_CLUSTER_MIN_EVENTS})
        return [
            LotCluster(
                product_lot=lot,
                category=category,
                clinic_ids=tuple(clinics),
                event_count=count,
                first_onset_on=first,
                last_onset_on=last,
                event_ids=tuple(ids),
            )
            for lot, category, clinics, count, first, last, ids in cursor.fetchall()
        ]
