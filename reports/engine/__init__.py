"""The incidence engine: SQL does the counting, Python only the interval arithmetic.

``compute_incidence(params=...)`` is the single code path behind stored runs (the
Celery task), the API, the admin and ``manage.py compute_incidence``.
"""

from reports.engine.compute import IncidenceRow, compute_incidence
from reports.engine.params import IncidenceParams

__all__ = ["IncidenceParams", "IncidenceRow", "compute_incidence"]
