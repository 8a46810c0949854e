"""Let every role start and read incidence runs (which runs each sees is the selectors' business)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ["Clinician", "Clinic coordinator", "Registry administrator"]
PERMISSIONS = [("add", "incidencerun"), ("view", "incidencerun"), ("view", "incidenceresult")]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("reports")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = [Permission.objects.get(content_type__app_label="reports", codename=f"{a}_{m}") for a, m in PERMISSIONS]
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.add(*perms)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="reports")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
        ("registry", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
