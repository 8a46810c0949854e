from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure below the domain apps: request guards, safe text, spreadsheet-safe output."""

    name = "core"
    verbose_name = "Core"
