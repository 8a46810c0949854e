"""Read paths for adverse events, limited by registry.selectors."""

from __future__ import annotations

from django.db.models import QuerySet

from events.models import AdverseEvent
from registry.selectors import limit_to_user_clinics


def adverse_events_for_user(user) -> QuerySet[AdverseEvent]:
    """Return the adverse events ``user`` may see, retracted ones included (for audit)."""
    return limit_to_user_clinics(
        AdverseEvent.objects.select_related("procedure__clinic", "procedure__patient"),
        user,
        "procedure__clinic_id",
    )
