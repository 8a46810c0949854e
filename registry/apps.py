from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):
    from django.contrib.auth.models import Group, Permission

    from registry.roles import sync_role_groups

    sync_role_groups(Group, Permission)


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self):
        # Re-apply the role definition after every migrate and after test-database flushes.
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="registry_sync_roles")
