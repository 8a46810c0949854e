"""Signals: the nightly safety screen a committee acts on (DESIGN.md 2b "Signals", issue 11).

A floor above reports (it reads reports' engine and the registry; nothing imports it):

1. ``services.signal_run_execute`` stores a signal run: the rows of
   ``reports.engine.signals.compute_signals`` (the cohort screen and the disproportionality
   columns) and the product-lot cluster alerts of ``clusters`` (3 or more events of one
   category in one lot with onsets within 30 days), in one transaction, flags what is new
   since the previous succeeded run, and on commit emails the reviewers what is new.
2. ``tasks.nightly_run`` is the Celery beat entry (one stored run per cut-off, however often
   it is delivered); ``manage.py signal_run`` and the admin's "Run now" start one by hand.
3. ``admin`` is the Signals page (registry administrators and safety reviewers only): the
   latest run's signals and alerts, links to the line listing, "mark reviewed" with a comment
   (``SignalReview``: append-only, audited by pghistory).
"""
