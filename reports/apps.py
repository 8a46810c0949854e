from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self):
        # Register the Celery tasks in every process (web, commands, benchmarks), not only in a
        # worker's autodiscovery: services publish a run by its task name (reports.choices).
        from reports import tasks  # noqa: F401
