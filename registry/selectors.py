"""The one place that decides which rows a user may see.

Every read path (admin changelists, pickers and autocomplete, the API, exports and
reports) starts from these functions, so the row-level limit is written once.
"""

from __future__ import annotations

from django.db.models import QuerySet

from core.dates import today
from registry.choices import REGISTRY_WIDE_ROLES, Role
from registry.models import Clinic, ContactAttempt, FollowUpVisit, Membership, Patient, Procedure
from registry.roles import ROLE_PERMISSIONS, ROLE_TO_GROUP

_CACHE_ATTR = "_registry_clinic_scope"
_ROLES_ATTR = "_registry_roles"
_MEMBERSHIPS_ATTR = "_registry_memberships"
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
    if user.is_superuser or any(role in REGISTRY_WIDE_ROLES for role, _ in rows):
        scope = ALL
    else:
        scope = frozenset(clinic_id for _, clinic_id in rows if clinic_id is not None)
    setattr(user, _CACHE_ATTR, scope)
    setattr(user, _ROLES_ATTR, frozenset(role for role, _ in rows))
    setattr(user, _MEMBERSHIPS_ATTR, frozenset(rows))
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
    """Return True when ``user`` administers the registry (a registry_admin membership, or a superuser).

    A safety reviewer also sees every clinic (clinic_scope() is ALL) but is not an administrator.
    """
    if clinic_scope(user) is not ALL:
        return False
    return user.is_superuser or Role.REGISTRY_ADMIN in getattr(user, _ROLES_ATTR, ())


def is_safety_reviewer(user) -> bool:
    """Return True when ``user`` holds the safety reviewer role (registry-wide, read-only but for reviews)."""
    clinic_scope(user)
    return Role.SAFETY_REVIEWER in getattr(user, _ROLES_ATTR, ())


def is_coordinator_of(user, clinic_id: int | None) -> bool:
    """Return True when ``user`` coordinates the clinic ``clinic_id`` or is a registry administrator.

    Coordinators, not clinicians, decide that a patient is lost to follow-up (DESIGN.md 1).
    """
    if is_registry_admin(user):
        return True
    return clinic_id is not None and (Role.COORDINATOR, clinic_id) in getattr(user, _MEMBERSHIPS_ATTR, ())


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
    # The patient comes along: whether a visit is chased depends on its death and withdrawal dates.
    return limit_to_user_clinics(
        FollowUpVisit.objects.select_related("procedure__clinic", "procedure__patient"), user, "procedure__clinic_id"
    )


def can_write_clinic(user, clinic_id: int | None) -> bool:
    """Return True when ``user`` may write clinical data of the clinic ``clinic_id``.

    Registry administrators write everywhere; a safety reviewer reads everywhere and writes no
    clinical data (only medical reviews, which events.services checks on its own).
    """
    scope = clinic_scope(user)
    if scope is ALL:
        return is_registry_admin(user)
    return clinic_id is not None and clinic_id in scope


def filter_overdue(queryset: QuerySet, *, overdue: bool, visit_id_field: str) -> QuerySet:
    """Return the rows of ``queryset`` with (or without) a follow-up visit past its window.

    ``visit_id_field`` is the visit column naming the row: "pk" for visits themselves,
    "procedure_id" for procedures. Used by the admin's and the API's overdue filters; what counts as
    overdue (not retracted, patient alive and enrolled, not lost to follow-up) is FollowUpVisitQuerySet.overdue.
    """
    open_late = FollowUpVisit.objects.overdue().values(visit_id_field)
    return queryset.filter(pk__in=open_late) if overdue else queryset.exclude(pk__in=open_late)


def visit_is_overdue(visit: FollowUpVisit) -> bool:
    """Return True when ``visit`` is on the overdue list, as FollowUpVisitQuerySet.overdue decides for today.

    For one loaded row (the admin's column, the API's ``overdue`` field): its procedure and patient are
    read from the row's cache, so a list fetched with visits_for_user() spends no query on it.
    """
    if not visit.is_overdue or visit.is_retracted:
        return False
    procedure = visit.procedure
    patient = procedure.patient
    on = today()
    stopped = (patient.death_date, patient.withdrawn_on, procedure.lost_to_follow_up_on)
    return (
        not procedure.is_retracted
        and not patient.is_retracted
        and not any(day is not None and day <= on for day in stopped)
    )


def contact_attempts_on_open_visits(procedure: Procedure) -> int:
    """Return how many contact attempts are logged on the procedure's open (not completed, not retracted) visits.

    Enough of them (settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS) let a coordinator mark it lost to follow-up.
    """
    return ContactAttempt.objects.filter(
        visit__procedure=procedure, visit__completed_on__isnull=True, visit__retracted_at__isnull=True
    ).count()
