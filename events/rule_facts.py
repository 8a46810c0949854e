"""Return what the registry's rules across rows need to know of adverse events (registry.rules' extension points).

registry/ sits below events/ and never imports it; registry.services asks through the signals
registry.rules.patient_facts and procedure_facts, and EventsConfig.ready() connects these.
Retracted events constrain nothing, as in events.rules and the database's triggers.
"""

from __future__ import annotations

from django.db.models import Count, Max, Min, Q

from events.choices import Outcome
from events.models import AdverseEvent


def patient_facts(sender, *, patient, **kwargs) -> dict:
    """Return the latest onset and whether an event is fatal, over the patient's non-retracted events."""
    found = (
        AdverseEvent.objects.active()
        .filter(procedure__patient_id=patient.pk)
        .aggregate(last_onset_on=Max("onset_on"), fatal=Count("id", filter=Q(outcome=Outcome.FATAL)))
    )
    return {"last_onset_on": found["last_onset_on"], "has_fatal_event": found["fatal"] > 0}


def procedure_facts(sender, *, procedure, **kwargs) -> dict:
    """Return the earliest onset of the procedure's non-retracted events."""
    found = AdverseEvent.objects.active().filter(procedure_id=procedure.pk).aggregate(first=Min("onset_on"))
    return {"first_onset_on": found["first"]}
