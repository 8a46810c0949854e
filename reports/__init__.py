"""Reports: incidence runs, what a run stores, and the documents and exports read from it.

The flow, one way:

1. ``engine/`` counts. One SQL statement per report (``engine.sql``) does the counting of
   DESIGN.md 2 in PostgreSQL; ``engine.compute`` turns its aggregated rows into result rows
   with intervals (``engine.stats``: Wilson, Clopper-Pearson, Garwood, Kaplan-Meier with
   Greenwood, funnel limits) and ``engine.km`` does the Kaplan-Meier sums and step curves.
   The engine's public functions (``reports.engine``) are the only place a counting rule
   lives: ``iter_incidence``/``compute_incidence`` (the rows), ``km_curves`` (the curves),
   ``counted_events_sql`` (the events a report's cases are made of), ``estimate_result_rows``.
2. ``services`` runs a report and stores it (``models``: IncidenceRun and its rows), and
   ``snapshot`` stores, in the same transaction, what the run's documents show beyond the
   rows (curves, provider rates, the counted events): a succeeded run is immutable, so its
   documents never change after an edit of the registry. ``tasks`` is the Celery entry,
   ``selectors`` the reads (what a user may see), ``api``/``admin`` the doors.
3. ``documents/`` reads a stored run only: the report page, charts, XLSX workbook and PDF.
4. ``exports/`` streams registry data out (line listings, FHIR, overdue visits, the run's
   CSV) and keeps the export log (``exports.models.ExportLog``, imported by ``models``).

HTML is rendered by templates only (``templates/admin/reports/``).
"""
