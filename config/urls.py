from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Stem-cell therapy adverse event registry"
admin.site.site_title = "AE registry"
admin.site.index_title = "Data entry"

# Hardening 6: 503 + Retry-After when the database is unavailable; the API's JSON body under /api/.
handler500 = "core.views.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("reports.urls")),
    path("api/", include("config.api_urls")),
    # Hardening 13: the browsable API logs in through the admin login (password and authenticator code).
    path(
        "api-auth/login/",
        RedirectView.as_view(pattern_name="admin:login", query_string=True),
        name="api-auth-login",
    ),
    path("api-auth/", include("rest_framework.urls")),  # logout for the browsable API
    # Issue 12: the patient's own pages (a signed link, no account) and the public comparison (no login).
    path("p/", include("patients.urls")),
    path("public/", include("public.urls")),
]
