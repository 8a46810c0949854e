"""The shipped rule sets fire on a constructed case and not on its near-misses.

ICH E2A: serious, unexpected, at least possibly related; 7 days for fatal or life-threatening
cases, 15 days for other serious ones (one case gets the stricter clock only). US HCT/P (21 CFR
1271.350(a)): a communicable disease involved and fatal, life-threatening, permanent impairment or
a medical or surgical intervention; 15 days; clinics in the US only.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from events import services as event_services
from events.choices import Category
from events.models import ReferenceSafetyInformation
from safety import services
from safety.models import ReportingRule
from tests.safety.conftest import AWARE, HCTP, ICH_7, ICH_15, due_codes, make_case, make_procedure, rule

pytestmark = pytest.mark.django_db

FATAL = {
    "grade": 5,
    "outcome": "fatal",
    "serious_hospitalisation": False,
    "serious_death": True,
    "action_taken": "",
}


@pytest.fixture
def fatal_patient_case(clinic_a):
    """Return a fatal, unexpected, probably related case (its patient died the day after onset)."""
    procedure = make_procedure(clinic_a)
    patient = procedure.patient
    patient.death_date = dt.date(2026, 1, 26)
    patient.death_cause = "Sepsis"
    patient.save()
    return make_case(clinic_a, procedure=procedure, causality_product="probable", **FATAL)


def test_the_shipped_rules_are_the_two_rule_sets():
    assert set(ReportingRule.objects.filter(active=True).values_list("code", flat=True)) == {HCTP, ICH_15, ICH_7}
    hctp, fifteen, seven = rule(HCTP), rule(ICH_15), rule(ICH_7)
    assert (hctp.jurisdiction, hctp.clock_days, hctp.form, hctp.requires_communicable_disease) == (
        ["US"],
        15,
        "fda_3500a",
        True,
    )
    assert set(hctp.any_of_outcomes) == {"death", "life_threatening", "disability", "intervention"}
    assert (fifteen.clock_days, seven.clock_days, seven.supersedes, fifteen.form) == (15, 7, fifteen, "cioms_i")
    assert {"ES", "DE", "GB", "CH", "JP", "CA", "US"} <= set(fifteen.jurisdiction)
    assert "BR" not in fifteen.jurisdiction


class TestIchE2A:
    def test_a_serious_unexpected_related_case_in_spain_gets_a_15_day_report(self, clinic_a):
        event = make_case(clinic_a)
        assert due_codes(event) == [ICH_15]
        due = event.due_reports.get()
        assert (due.clock_start, due.due_on, due.started_by, due.recipient) == (
            AWARE,
            AWARE + dt.timedelta(days=15),
            "initial",
            "National competent authority",
        )

    def test_the_clock_counts_calendar_days_from_awareness(self, clinic_a):
        event = make_case(clinic_a, aware_on=dt.date(2026, 1, 30))
        assert event.due_reports.get().due_on == dt.date(2026, 2, 14)

    def test_a_fatal_case_gets_the_7_day_report_only(self, fatal_patient_case):
        assert due_codes(fatal_patient_case) == [ICH_7]
        assert fatal_patient_case.due_reports.get().due_on == AWARE + dt.timedelta(days=7)

    def test_a_life_threatening_case_gets_the_7_day_report_only(self, clinic_b):
        event = make_case(clinic_b, grade=4, serious_hospitalisation=False, serious_life_threatening=True)
        assert due_codes(event) == [ICH_7]

    @pytest.mark.parametrize(
        ("near_miss", "fields"),
        [
            ("non-serious", {"serious": False, "serious_hospitalisation": False, "grade": 2, "action_taken": ""}),
            ("expected", {"expectedness": "expected"}),
            ("unrelated", {"causality_procedure": "unlikely", "causality_product": "unassessable"}),
            ("causality not assessed", {"causality_procedure": "", "causality_product": ""}),
        ],
    )
    def test_it_does_not_fire_on_a_near_miss(self, clinic_a, near_miss, fields):
        assert due_codes(make_case(clinic_a, **fields)) == []

    def test_it_does_not_fire_for_a_clinic_outside_its_jurisdiction(self, clinic_br):
        assert due_codes(make_case(clinic_br)) == []

    def test_blank_site_expectedness_is_judged_by_the_reference_safety_information(self, clinic_a, root):
        assert due_codes(make_case(clinic_a, expectedness="")) == [ICH_15]  # not listed: unexpected
        event_services.reference_safety_information_save(
            actor=root,
            entry=ReferenceSafetyInformation(category=Category.INFECTION, term="Joint infection", source="Guide"),
        )
        assert due_codes(make_case(clinic_a, expectedness="")) == []  # listed: expected


class TestUsHctp:
    COMMUNICABLE = {"communicable_disease": True, "expectedness": "expected"}

    def test_a_communicable_disease_needing_hospitalisation_in_the_us_gets_a_15_day_fda_report(self, clinic_us):
        event = make_case(clinic_us, **self.COMMUNICABLE)
        assert due_codes(event) == [HCTP]
        due = event.due_reports.get()
        assert (due.due_on, due.recipient, due.form) == (dt.date(2026, 2, 14), "FDA CBER (MedWatch)", "fda_3500a")

    def test_a_medical_intervention_without_seriousness_is_enough(self, clinic_us):
        event = make_case(
            clinic_us,
            serious=False,
            serious_hospitalisation=False,
            grade=2,
            action_taken="medication",
            **self.COMMUNICABLE,
        )
        assert due_codes(event) == [HCTP]

    def test_an_unexpected_case_in_the_us_also_owes_the_ich_report(self, clinic_us):
        assert due_codes(make_case(clinic_us, communicable_disease=True)) == [HCTP, ICH_15]

    @pytest.mark.parametrize(
        ("near_miss", "fields"),
        [
            ("no communicable disease", {"communicable_disease": False}),
            (
                "no qualifying outcome",
                {"serious": False, "serious_hospitalisation": False, "grade": 1, "action_taken": "none"},
            ),
            ("unrelated", {"causality_procedure": "unlikely", "causality_product": "unlikely"}),
        ],
    )
    def test_it_does_not_fire_on_a_near_miss(self, clinic_us, near_miss, fields):
        assert due_codes(make_case(clinic_us, **{**self.COMMUNICABLE, **fields})) == []

    def test_it_does_not_fire_outside_the_us(self, clinic_a):
        assert due_codes(make_case(clinic_a, **self.COMMUNICABLE)) == []


class TestRuleValidation:
    def _rule(self, **fields) -> ReportingRule:
        values = {
            "code": "test-rule",
            "name": "Test",
            "jurisdiction": ["ES"],
            "clock_days": 10,
            "recipient": "AEMPS",
            "form": "cioms_i",
            **fields,
        }
        return ReportingRule(**values)

    def test_a_rule_needs_a_country_or_all_countries(self):
        with pytest.raises(ValidationError) as caught:
            self._rule(jurisdiction=[]).full_clean()
        assert "jurisdiction" in caught.value.message_dict
        self._rule(jurisdiction=[], all_countries=True).full_clean()

    def test_it_refuses_unknown_codes_field_by_field(self):
        with pytest.raises(ValidationError) as caught:
            self._rule(
                jurisdiction=["Spain"], any_of_outcomes=["bad"], categories=["nope"], meddra_pt_codes=["12"]
            ).full_clean()
        assert set(caught.value.message_dict) >= {"jurisdiction", "any_of_outcomes", "categories", "meddra_pt_codes"}

    def test_a_rule_is_never_deleted(self):
        with pytest.raises(DatabaseError), transaction.atomic():
            ReportingRule.objects.filter(code=ICH_15).delete()
        assert ReportingRule.objects.filter(code=ICH_15).exists()

    def test_an_inactive_rule_makes_nothing_due(self, clinic_a):
        ReportingRule.objects.filter(code=ICH_15).update(active=False)
        assert due_codes(make_case(clinic_a)) == []


class TestRuleAddedLater:
    def test_a_rule_added_for_another_country_catches_its_open_cases_at_once(
        self, clinic_br, root, django_capture_on_commit_callbacks
    ):
        event = make_case(clinic_br)
        assert due_codes(event) == []  # no rule for Brazil yet
        new = ReportingRule(
            code="br-anvisa-15-day",
            name="ANVISA expedited report (example)",
            jurisdiction=["BR"],
            requires_serious=True,
            requires_related=True,
            requires_unexpected=True,
            clock_days=15,
            recipient="ANVISA",
            form="cioms_i",
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.reporting_rule_save(actor=root, rule=new)
        due = event.due_reports.get()
        # Reportable under the new rule since the clinic learned of it: the clock runs from awareness.
        expected = ("br-anvisa-15-day", AWARE, AWARE + dt.timedelta(days=15))
        assert (due.rule.code, due.clock_start, due.due_on) == expected

    def test_a_closed_case_is_not_reopened_by_a_new_rule(self, clinic_br, root, django_capture_on_commit_callbacks):
        event = make_case(clinic_br, case_status="closed")
        new = ReportingRule(
            code="br-anvisa-15-day", name="ANVISA", jurisdiction=["BR"], requires_serious=True, clock_days=15,
            recipient="ANVISA", form="cioms_i",
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            services.reporting_rule_save(actor=root, rule=new)
        assert due_codes(event) == []
