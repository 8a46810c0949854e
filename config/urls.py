from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Stem-cell therapy adverse event registry"
admin.site.site_title = "AE registry"
admin.site.index_title = "Data entry"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("reports.urls")),
    path("api/", include("config.api_urls")),
    path("api-auth/", include("rest_framework.urls")),  # login for the browsable API
]
