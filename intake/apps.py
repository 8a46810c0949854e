from django.apps import AppConfig


class IntakeConfig(AppConfig):
    """The layer above registry/ and events/: CSV import, demo data and the data-entry screen's cross-app wiring.

    Layers, lowest first: core/ (infrastructure), registry/ (clinics, patients, procedures, visits),
    events/ (adverse events), intake/ and reports/ (what spans the domain apps). No module imports
    from a layer above its own.
    """

    name = "intake"
    verbose_name = "Intake"
