"""API routes of a run's documents (included from reports.urls)."""

from django.urls import path

from reports.documents import views

urlpatterns = [
    path(
        "incidence-runs/<int:pk>/report.xlsx",
        views.IncidenceRunReportXlsx.as_view(),
        name="incidence-run-report-xlsx",
    ),
    path(
        "incidence-runs/<int:pk>/report.pdf",
        views.IncidenceRunReportPdf.as_view(),
        name="incidence-run-report-pdf",
    ),
]
