"""The roles as auth groups, and the permissions each holds.

Migration registry 0002 creates them; a post_migrate hook re-applies this definition
after every migrate (and after test flushes), so the groups never drift from it.
"""

from __future__ import annotations

# Membership role code -> the auth group holding its permissions.
ROLE_TO_GROUP = {
    "clinician": "Clinician",
    "coordinator": "Clinic coordinator",
    "registry_admin": "Registry administrator",
    "safety_reviewer": "Safety reviewer",
}

CLINICAL = [
    ("registry", "patient"),
    ("registry", "procedure"),
    ("registry", "followupvisit"),
    ("events", "adverseevent"),
]

ROLE_PERMISSIONS: dict[str, list[tuple[str, str, str]]] = {
    "Clinician": [("view", "registry", "clinic")]
    + [(a, app, m) for app, m in CLINICAL for a in ("view", "add", "change")],
    "Clinic coordinator": [("view", "registry", "clinic"), ("view", "registry", "membership")]
    + [(a, app, m) for app, m in CLINICAL for a in ("view", "add", "change")],
    "Registry administrator": [(a, "registry", m) for m in ("clinic", "membership") for a in ("view", "add", "change")]
    + [(a, app, m) for app, m in CLINICAL for a in ("view", "add", "change")]
    + [("view", "pghistory", "events"), ("view", "reports", "exportlog")]
    + [(a, "events", m) for m in ("referencesafetyinformation",) for a in ("view", "add", "change")]
    + [(a, "events", "medicalreview") for a in ("view", "add")] + [("view", "events", "followupreport")],
    # Issue 10: registry-wide and read-only on clinical data; the one thing it writes is its review.
    "Safety reviewer": [("view", "registry", "clinic")]
    + [("view", app, m) for app, m in CLINICAL]
    + [("view", "events", "followupreport"), ("view", "events", "referencesafetyinformation")]
    + [(a, "events", "medicalreview") for a in ("view", "add")],
}


def sync_role_groups(group_model, permission_model) -> None:
    """Create or update each role's group so it holds exactly ROLE_PERMISSIONS."""
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = []
        for action, app, model in perms:
            perm = permission_model.objects.filter(content_type__app_label=app, codename=f"{action}_{model}").first()
            if perm is not None:  # a permission appears once its app has migrated
                wanted.append(perm)
        group.permissions.set(wanted)
