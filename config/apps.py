"""The admin app with the registry's two-factor site as the default ``admin.site``.

Every ModelAdmin registered with ``@admin.register`` or ``admin.site.register`` lands on it, so no
admin page can be reached without the second factor (Django's documented way to swap the default site).
"""

from django.contrib.admin.apps import AdminConfig


class RegistryAdminConfig(AdminConfig):
    default_site = "core.admin_site.RegistryAdminSite"
