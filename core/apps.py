from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure below the domain apps: request guards, safe text, spreadsheet-safe output."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        # Hardening 10: a password change or a deactivation revokes the user's API tokens.
        from core.auth import connect_signals  # needs the user model: only importable once apps are ready

        connect_signals()
