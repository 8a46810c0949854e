from django.apps import AppConfig


class SignalsConfig(AppConfig):
    name = "signals"
    verbose_name = "Signals"

    def ready(self):
        # Register the Celery tasks in every process: the admin's "Run now" publishes by name.
        from signals import tasks  # noqa: F401
