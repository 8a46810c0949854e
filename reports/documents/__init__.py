"""Readable documents of an incidence run: the report page, charts, XLSX workbook and PDF safety report.

- ``curves``: Kaplan-Meier step curves per stratum, counted in SQL from the engine's own
  per-procedure table (reports.engine.sql ``base``), so they pass through the stored
  30-day, 1, 2 and 5-year figures.
- ``provider``: each clinic's rate against the pooled rate, with funnel-plot control limits.
- ``linelisting``: the de-identified events that count for a run.
- ``charts``: forest plot, Kaplan-Meier curves, funnel plot (matplotlib, Agg).
- ``workbook`` / ``pdf``: the downloads; ``views``: admin pages and API routes.
"""
