from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self):
        # Register the Celery tasks in every process (web, commands, benchmarks), not only in a
        # worker's autodiscovery: services publish a run by its task name (reports.choices).
        from reports import tasks  # noqa: F401
        from reports.outcomes import restore_defaults

        # After migrate and after a test database's flush, every outcome keeps a stored definition.
        post_migrate.connect(restore_defaults, sender=self, dispatch_uid="reports_restore_outcome_definitions")
