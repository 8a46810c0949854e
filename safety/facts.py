"""The case as the reporting rules read it: the site's assessment joined with the latest medical review.

The choices (docs/expedited-reporting.md, "Case facts"), all conservative:
- serious when the site or the reviewer says so; the seriousness criteria are the union of both;
- related when the stronger of the site's and the reviewer's causality (to the procedure or to the
  product, whichever is stronger) is at least possible (certain, probable, possible; unlikely,
  unassessable and blank are not related);
- unexpected by the reviewer's expectedness when reviewed, else the site's, else when no active
  entry of the reference safety information covers the event;
- intervention when the action taken was medication, aspiration, hospitalisation or surgery, or
  the case meets the hospitalisation criterion.
A reviewer's view changes what becomes due from then on; it never closes a clock already started
(safety.services keeps every due report).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.choices import SERIOUS_CRITERIA, Expectedness, Outcome
from events.models import AdverseEvent, MedicalReview, ReferenceSafetyInformation
from events.selectors import expected_by_rsi, latest_review
from safety.choices import CAUSALITY_RANK, INTERVENTION, INTERVENTION_ACTIONS, RELATED_CAUSALITY
from safety.models import ReportingRule


@dataclass(frozen=True)
class CaseFacts:
    country: str
    serious: bool
    outcomes: frozenset[str]  # SERIOUS_CRITERIA keys met, plus INTERVENTION
    category: str
    pt_code: str
    causality: str  # the strongest of site and reviewer, procedure or product
    related: bool
    unexpected: bool
    unexpected_basis: str  # "review", "site" or "reference safety information"
    communicable_disease: bool
    fatal: bool


def _strongest(*values: str) -> str:
    return max(values, key=lambda value: CAUSALITY_RANK.get(value, 0))


def case_facts(
    event: AdverseEvent,
    review: MedicalReview | None = None,
    *,
    rsi_entries: list[ReferenceSafetyInformation] | None = None,
) -> CaseFacts:
    """Return the facts of ``event`` with its latest review (``review`` when given: the one just recorded).

    The latest review comes from events.selectors.latest_review (prefetched by with_reviews() when a
    caller judges many events); ``rsi_entries``: the active reference safety information, loaded once.
    """
    review = review or latest_review(event)
    criteria = {key for key, field in SERIOUS_CRITERIA.items() if getattr(event, field)}
    causalities = [event.causality_procedure, event.causality_product]
    if review is not None:
        criteria |= {key for key, field in SERIOUS_CRITERIA.items() if getattr(review, field)}
        causalities += [review.causality_procedure, review.causality_product]
    if review is not None:
        unexpected, basis = review.expectedness == Expectedness.UNEXPECTED, "review"
    elif event.expectedness:
        unexpected, basis = event.expectedness == Expectedness.UNEXPECTED, "site"
    else:
        unexpected, basis = expected_by_rsi(event, rsi_entries) is None, "reference safety information"
    # A fatal outcome is a death whether or not the site ticked the criterion (grade 5 alone makes
    # an event fatal, events.rules): the stricter clock and the HCT/P outcome follow from it.
    fatal = event.outcome == Outcome.FATAL or "death" in criteria
    outcomes = set(criteria) | ({"death"} if fatal else set())
    if event.action_taken in INTERVENTION_ACTIONS or "hospitalisation" in criteria:
        outcomes.add(INTERVENTION)
    causality = _strongest(*causalities)
    return CaseFacts(
        country=event.procedure.clinic.country.upper(),
        serious=fatal or event.serious or (review is not None and review.serious),
        outcomes=frozenset(outcomes),
        category=event.category,
        pt_code=event.meddra_pt_code,
        causality=causality,
        related=causality in RELATED_CAUSALITY,
        unexpected=unexpected,
        unexpected_basis=basis,
        communicable_disease=event.communicable_disease,
        fatal=fatal,
    )


def unmet_criteria(rule: ReportingRule, facts: CaseFacts) -> list[str]:
    """Return why ``rule`` does not apply to a case with ``facts`` (empty: the rule is met)."""
    why = []
    if not rule.applies_to_country(facts.country):
        why.append(f"country {facts.country} outside the jurisdiction")
    if rule.requires_serious and not facts.serious:
        why.append("not serious")
    if rule.any_of_outcomes and not facts.outcomes & set(rule.any_of_outcomes):
        why.append("none of the qualifying outcomes")
    if rule.categories and facts.category not in rule.categories:
        why.append("category not covered")
    if rule.meddra_pt_codes and facts.pt_code not in rule.meddra_pt_codes:
        why.append("preferred term not covered")
    if rule.requires_related and not facts.related:
        why.append("not at least possibly related")
    if rule.requires_unexpected and not facts.unexpected:
        why.append("expected")
    if rule.requires_communicable_disease and not facts.communicable_disease:
        why.append("no communicable disease involved")
    return why


def rule_met(rule: ReportingRule, facts: CaseFacts) -> bool:
    """Return True when a case with ``facts`` meets every criterion of ``rule`` (supersession aside)."""
    return not unmet_criteria(rule, facts)
