"""Export routes, included under /api/v1/exports/ by config.api_urls."""

from django.urls import path

from reports.exports.views import (
    AdverseEventDeidentifiedListing,
    AdverseEventFhirBundle,
    AdverseEventLineListing,
    OverdueVisits,
)

urlpatterns = [
    path("adverse-events.csv", AdverseEventLineListing.as_view(), name="export-adverse-events-csv"),
    path(
        "adverse-events.deidentified.csv",
        AdverseEventDeidentifiedListing.as_view(),
        name="export-adverse-events-deidentified-csv",
    ),
    path("adverse-events.fhir.json", AdverseEventFhirBundle.as_view(), name="export-adverse-events-fhir"),
    path("overdue-visits.csv", OverdueVisits.as_view(), name="export-overdue-visits-csv"),
]
