"""Readable documents of a succeeded incidence run: the report page, charts, XLSX workbook and PDF safety report.

Every document reads only what the run stored (reports.models, reports.snapshot), so the
same run's documents show the same numbers whatever happens to the registry afterwards.

- ``curves``: the run's Kaplan-Meier and Aalen-Johansen step curves per stratum (computed by reports.engine).
- ``provider``: the case-mix-adjusted provider comparison (SIR by clinic, country, GMP certification) and the
  funnel plot's exact Poisson control limits.
- ``definitions``: the frozen outcome definitions, counting rules and methods every document prints.
- ``formatting``: numbers for people (percent with one decimal, three significant figures, no exponent).
- ``page``: the report page's outcome tabs, strata filter, pagination and cells that say why they are empty.
- ``linelisting``: the de-identified events that counted for the run.
- ``charts``: forest plot, cumulative incidence curves, funnel plot (matplotlib, Agg).
- ``workbook`` / ``pdf``: the downloads; ``views``: admin pages and API routes.
"""
