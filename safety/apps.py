from django.apps import AppConfig


class SafetyConfig(AppConfig):
    """Issue 10: expedited-report rules, due reports, submissions, CIOMS I forms and safety figures."""

    name = "safety"
    verbose_name = "Safety reporting"

    def ready(self):
        # The beat publishes the reminder task by name; the case_changed receiver evaluates the rules.
        from events.hooks import case_changed
        from safety import tasks  # noqa: F401
        from safety.services import on_case_changed

        case_changed.connect(on_case_changed, dispatch_uid="safety.case_evaluate")
