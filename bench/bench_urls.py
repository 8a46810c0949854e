"""The product's URLs plus the benchmark's baseline: a plain Django view inserting the same adverse event.

The baseline is the framework's own limit for this write: the same middleware, one
lookup of the procedure by its id and one INSERT (with the same database triggers and
audit trail), but no DRF, no authentication, no permission or row-level checks, no
validation and no idempotency. bench/bench_settings.py selects this URLconf; the
product never routes to it.
"""

import json

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns
from events.models import AdverseEvent
from registry.models import Procedure

FIELDS = ("category", "term", "onset_on", "grade", "outcome")


@csrf_exempt
def insert_adverse_event(request):
    data = json.loads(request.body)
    procedure_id = Procedure.objects.filter(external_id=data["procedure"]).values_list("pk", flat=True).first()
    event = AdverseEvent.objects.create(procedure_id=procedure_id, **{name: data[name] for name in FIELDS})
    return JsonResponse({"id": event.pk, "event_id": event.external_id}, status=201)


urlpatterns = [path("bench/adverse-events/", insert_adverse_event), *product_urlpatterns]
