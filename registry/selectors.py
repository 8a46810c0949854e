"""The one place that decides which rows a user may see.

Every read path (admin changelists, pickers and autocomplete, the API, exports and
reports) starts from these functions, so the row-level limit is written once.
"""

from __future__ import annotations

from django.db.models import QuerySet

from registry.choices import Role
from registry.models import Clinic, FollowUpVisit, Membership, Patient, Procedure
from registry.roles import ROLE_PERMISSIONS, ROLE_TO_GROUP

_CACHE_ATTR = "_registry_clinic_scope"
_ROLES_ATTR = "_registry_roles"
ALL = None  # scope value meaning "every clinic"


def clinic_scope(user) -> frozenset[int] | None:
    """Return the ids of the clinics ``user`` may see, or None for every clinic.

    Anonymous and inactive users get the empty set. The answer is cached on the user
    object, which lives for one request.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if hasattr(user, _CACHE_ATTR):
        return getattr(user, _CACHE_ATTR)
    rows = [] if user.is_superuser else list(Membership.objects.filter(user=user).values_list("role", "clinic_id"))
    if user.is_superuser or any(role == Role.REGISTRY_ADMIN for role, _ in rows):
        scope = ALL
    else:
        scope = frozenset(clinic_id for _, clinic_id in rows if clinic_id is not None)
    setattr(user, _CACHE_ATTR, scope)
    setattr(user, _ROLES_ATTR, frozenset(role for role, _ in rows))
    return scope


def role_permissions(user) -> frozenset[str] | None:
    """Return the "app.codename" permissions ``user``'s roles grant, or None for a superuser.

    The same definition the role groups are synced from (registry.roles), read from the
    membership rows clinic_scope() already loaded, so an API request spends no query on it.
    """
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return None
    clinic_scope(user)
    return frozenset(
        f"{app}.{action}_{model}"
        for role in getattr(user, _ROLES_ATTR)
        for action, app, model in ROLE_PERMISSIONS[ROLE_TO_GROUP[role]]
    )


def is_registry_admin(user) -> bool:
    """Return True when ``user`` sees every clinic."""
    return clinic_scope(user) is ALL


def user_roles(user) -> set[str]:
    """Return the roles ``user`` holds anywhere."""
    if not user.is_authenticated:
        return set()
    return set(Membership.objects.filter(user=user).values_list("role", flat=True))


def limit_to_user_clinics(qs: QuerySet, user, clinic_path: str) -> QuerySet:
    """Return ``qs`` limited to rows whose ``clinic_path`` is a clinic ``user`` may see."""
    scope = clinic_scope(user)
    if scope is ALL:
        return qs
    if not scope:
        return qs.none()
    return qs.filter(**{f"{clinic_path}__in": scope})


def clinics_for_user(user) -> QuerySet[Clinic]:
    """Return the clinics ``user`` may see."""
    return limit_to_user_clinics(Clinic.objects.all(), user, "id")


def memberships_for_user(user) -> QuerySet[Membership]:
    """Return memberships: administrators see all, others their clinics' staff."""
    return limit_to_user_clinics(Membership.objects.select_related("user", "clinic"), user, "clinic_id")


def patients_for_user(user) -> QuerySet[Patient]:
    """Return the patients ``user`` may see."""
    return limit_to_user_clinics(Patient.objects.select_related("clinic"), user, "clinic_id")


def procedures_for_user(user) -> QuerySet[Procedure]:
    """Return the procedures ``user`` may see."""
    return limit_to_user_clinics(Procedure.objects.select_related("clinic", "patient"), user, "clinic_id")


def visits_for_user(user) -> QuerySet[FollowUpVisit]:
    """Return the follow-up visits ``user`` may see."""
    return limit_to_user_clinics(
        FollowUpVisit.objects.select_related("procedure__clinic"), user, "procedure__clinic_id"
    )


def can_write_clinic(user, clinic_id: int | None) -> bool:
    """Return True when ``user`` may write clinical data of the clinic ``clinic_id``."""
    scope = clinic_scope(user)
    return scope is ALL or (clinic_id is not None and clinic_id in scope)


def filter_overdue(queryset: QuerySet, *, overdue: bool, visit_id_field: str) -> QuerySet:
    """Return the rows of ``queryset`` with (or without) a follow-up visit past its window.

    ``visit_id_field`` is the visit column naming the row: "pk" for visits themselves,
    "procedure_id" for procedures. Used by the admin's and the API's overdue filters.
    """
    open_late = FollowUpVisit.objects.overdue().values(visit_id_field)
    return queryset.filter(pk__in=open_late) if overdue else queryset.exclude(pk__in=open_late)
