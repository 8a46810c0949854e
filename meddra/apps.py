from django.apps import AppConfig


class MeddraConfig(AppConfig):
    name = "meddra"
    verbose_name = "MedDRA dictionary"
