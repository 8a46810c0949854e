"""The versioned REST API (/api/v1/), its OpenAPI schema and docs, token login and the FHIR view."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from core.api.auth import ApiTokenDetailView, ApiTokenListView, LogoutAllView, LogoutView, ObtainTokenView
from events.api.fhir_views import FhirAdverseEventRead, FhirAdverseEventSearch
from events.api.views import AdverseEventViewSet
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
    path("v1/auth/tokens/", ApiTokenListView.as_view(), name="api-token-list"),
    path("v1/auth/tokens/<str:token_id>/", ApiTokenDetailView.as_view(), name="api-token-detail"),
    path("v1/auth/logout/", LogoutView.as_view(), name="api-logout"),
    path("v1/auth/logoutall/", LogoutAllView.as_view(), name="api-logoutall"),
    path("v1/exports/", include("reports.exports.urls")),
    path("fhir/AdverseEvent/<int:pk>", FhirAdverseEventRead.as_view(), name="fhir-adverseevent-read"),
    path("fhir/AdverseEvent", FhirAdverseEventSearch.as_view(), name="fhir-adverseevent-search"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, so the CSP needs no inline script.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
]
