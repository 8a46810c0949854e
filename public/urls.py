"""URLs of the public comparison (mounted at /public/): no login, outside the admin."""

from django.urls import path

from public import views

app_name = "public"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.publication, name="publication"),
    path("<int:pk>/comparison.csv", views.publication_csv, name="csv"),
    path("<int:pk>/comparison.json", views.publication_json, name="json"),
]
