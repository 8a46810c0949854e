"""Medical reviews of a case, and the reference safety information expectedness is judged against."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.audit import audit_context
from core.integrity import save_or_field_error
from events import rules
from events.choices import Expectedness
from events.models import AdverseEvent, MedicalReview, ReferenceSafetyInformation
from events.selectors import expected_by_rsi, may_record_review
from events.services.adverse_events import send_case_changed
from registry import selectors


def medical_review_record(
    *,
    actor,
    event: AdverseEvent,
    serious: bool,
    causality_procedure: str,
    causality_product: str,
    expectedness: str,
    comment: str = "",
    serious_death: bool = False,
    serious_life_threatening: bool = False,
    serious_hospitalisation: bool = False,
    serious_disability: bool = False,
    serious_congenital_anomaly: bool = False,
    serious_medically_important: bool = False,
) -> MedicalReview:
    """Return a new medical review of ``event`` by ``actor`` (a safety reviewer or a registry administrator).

    The reviewer's seriousness (with its ICH criteria), WHO-UMC causality to the procedure and to
    the product, and expectedness are recorded beside the site's own, which stay as they are on
    the event: a disagreement is kept, not overwritten. An expected event's basis is the
    reference safety information entry matching it (events.selectors.expected_by_rsi), if any.
    Announced with case_changed(reason="review") in the same transaction.
    """
    if actor is None or not may_record_review(actor):
        raise PermissionDenied("Only safety reviewers and registry administrators record medical reviews.")
    with transaction.atomic(), audit_context(actor, "medical_review_record"):
        # The event's lock orders reviews and follow-ups of one case: a receiver sees them one at a time.
        stored = AdverseEvent.objects.select_for_update().select_related("procedure").get(pk=event.pk)
        if stored.retracted_at is not None:
            raise ValidationError(rules.FOLLOW_UP_ON_RETRACTED.error())
        review = MedicalReview(
            event=stored,
            reviewer=actor,
            serious=serious,
            serious_death=serious_death,
            serious_life_threatening=serious_life_threatening,
            serious_hospitalisation=serious_hospitalisation,
            serious_disability=serious_disability,
            serious_congenital_anomaly=serious_congenital_anomaly,
            serious_medically_important=serious_medically_important,
            causality_procedure=causality_procedure,
            causality_product=causality_product,
            expectedness=expectedness,
            comment=comment,
        )
        review.expectedness_basis = expected_by_rsi(stored) if expectedness == Expectedness.EXPECTED else None
        review.full_clean()
        save_or_field_error(review)
        send_case_changed(event=stored, actor=actor, reason="review", review=review)
    return review


def reference_safety_information_save(*, actor, entry: ReferenceSafetyInformation) -> ReferenceSafetyInformation:
    """Return the reference safety information entry after validating and saving it (registry administrators).

    Entries are never deleted: one that no longer holds is retired (retired_on), so an older review
    can still be read against the list as it stood.
    """
    if actor is not None and not selectors.is_registry_admin(actor):
        raise PermissionDenied("Only registry administrators maintain the reference safety information.")
    with transaction.atomic(), audit_context(actor, "reference_safety_information_save"):
        entry.full_clean()
        save_or_field_error(entry)
    return entry
