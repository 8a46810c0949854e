from django.apps import AppConfig


class PublicConfig(AppConfig):
    """Issue 12: publications of runs and the public, privacy-safe comparison of clinics."""

    name = "public"
    verbose_name = "Public comparison"
