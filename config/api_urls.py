"""The versioned REST API (/api/v1/), its OpenAPI schema and docs, token login and the FHIR view."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from events.api.fhir_views import FhirAdverseEventRead, FhirAdverseEventSearch
from events.api.views import AdverseEventViewSet
from registry.api.auth import ObtainTokenView
from registry.api.views import ClinicViewSet, FollowUpVisitViewSet, PatientViewSet, ProcedureViewSet

router = DefaultRouter()
router.register("clinics", ClinicViewSet, basename="clinic")
router.register("patients", PatientViewSet, basename="patient")
router.register("procedures", ProcedureViewSet, basename="procedure")
router.register("follow-up-visits", FollowUpVisitViewSet, basename="followupvisit")
router.register("adverse-events", AdverseEventViewSet, basename="adverseevent")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("v1/exports/", include("reports.exports.urls")),
    path("fhir/AdverseEvent/<int:pk>", FhirAdverseEventRead.as_view(), name="fhir-adverseevent-read"),
    path("fhir/AdverseEvent", FhirAdverseEventSearch.as_view(), name="fhir-adverseevent-search"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
