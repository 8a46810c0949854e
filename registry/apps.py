from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate

from registry.roles import sync_role_groups


def _sync_roles(sender, **kwargs):
    from django.contrib.auth.models import Group, Permission  # models: importable only once apps are ready

    sync_role_groups(Group, Permission)


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self):
        # Re-apply the role definition after every migrate and after test-database flushes.
        # post_migrate is sent once per app, in INSTALLED_APPS order, and each app's
        # permissions are created by its own signal: wait for the last app's, when all exist.
        # Only apps with a models module are sent the signal (an app without models is skipped).
        last_app = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
        post_migrate.connect(_sync_roles, sender=last_app, dispatch_uid="registry_sync_roles")
