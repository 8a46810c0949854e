from django.urls import path

from reports import api

app_name = "reports"

urlpatterns = [
    path("incidence-runs/", api.IncidenceRunListCreate.as_view(), name="incidence-run-list"),
    path("incidence-runs/<int:pk>/", api.IncidenceRunDetail.as_view(), name="incidence-run-detail"),
]
