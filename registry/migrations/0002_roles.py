"""Create the three roles as auth groups with their permissions.

Roles are data the code relies on, so they are created here rather than by hand;
re-running the migration brings the permissions back to this definition.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CLINICAL = [
    ("registry", "patient"),
    ("registry", "procedure"),
    ("registry", "followupvisit"),
    ("events", "adverseevent"),
]

ROLE_PERMISSIONS = {
    "Clinician": [("view", "registry", "clinic")]
    + [(a, app, m) for app, m in CLINICAL for a in ("view", "add", "change")],
    "Clinic coordinator": [("view", "registry", "clinic"), ("view", "registry", "membership")]
    + [(a, app, m) for app, m in CLINICAL for a in ("view", "add", "change")],
    "Registry administrator": [(a, "registry", m) for m in ("clinic", "membership") for a in ("view", "add", "change")]
    + [(a, app, m) for app, m in CLINICAL for a in ("view", "add", "change")],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; roles need them now.
    for app_label in ("registry", "events"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            [
                Permission.objects.get(content_type__app_label=app, codename=f"{action}_{model}")
                for action, app, model in perms
            ]
        )


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("events", "0002_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
