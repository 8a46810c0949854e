"""Readable documents of a succeeded incidence run: the report page, charts, XLSX workbook and PDF safety report.

Every document reads only what the run stored (reports.models, reports.snapshot), so the
same run's documents show the same numbers whatever happens to the registry afterwards.

- ``curves``: the run's Kaplan-Meier step curves per stratum (computed by reports.engine).
- ``provider``: each clinic's rate against the pooled rate, with funnel-plot control limits.
- ``linelisting``: the de-identified events that counted for the run.
- ``charts``: forest plot, Kaplan-Meier curves, funnel plot (matplotlib, Agg).
- ``workbook`` / ``pdf``: the downloads; ``views``: admin pages and API routes.
"""
