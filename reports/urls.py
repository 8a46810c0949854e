from django.urls import path

from reports import api
from reports.documents.urls import urlpatterns as document_urlpatterns

app_name = "reports"

urlpatterns = [
    path("incidence-runs/", api.IncidenceRunListCreate.as_view(), name="incidence-run-list"),
    path("incidence-runs/<int:pk>/", api.IncidenceRunDetail.as_view(), name="incidence-run-detail"),
]
urlpatterns += document_urlpatterns
