from django.apps import AppConfig

from registry import rules


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Adverse events"

    def ready(self):
        # Models can be imported only once the app registry is ready (Django's AppConfig.ready contract).
        from events import rule_facts

        # The registry's rules across rows learn of adverse events through its extension points.
        rules.patient_facts.connect(rule_facts.patient_facts, dispatch_uid="events_patient_facts")
        rules.procedure_facts.connect(rule_facts.procedure_facts, dispatch_uid="events_procedure_facts")
