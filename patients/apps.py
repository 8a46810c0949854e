from django.apps import AppConfig


class PatientsConfig(AppConfig):
    """Issue 12: patient links, the day 0-7 diary, problem reports and red flags."""

    name = "patients"
    verbose_name = "Patient reports"
