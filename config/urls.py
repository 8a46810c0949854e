from django.contrib import admin
from django.urls import path

admin.site.site_header = "Stem-cell therapy adverse event registry"
admin.site.site_title = "AE registry"
admin.site.index_title = "Data entry"

urlpatterns = [
    path("admin/", admin.site.urls),
]
