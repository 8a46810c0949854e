"""manage.py load_demo_data: a plausible, rule-abiding, idempotent demo registry.

Loading takes several seconds, so the data is loaded once for the class
(setUpTestData: one transaction, rolled back after the last test).
"""

from __future__ import annotations

import io
import time
from datetime import timedelta

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.db.models import Count, F, Q
from django.test import TestCase, override_settings

from events.choices import SERIOUS_CRITERIA, Category, Outcome
from events.models import AdverseEvent
from intake import demo
from registry import rules, selectors
from registry.choices import ALLOGENEIC_ONLY_CELL_TYPES, CellSource, Processing, Role
from registry.models import Clinic, FollowUpVisit, Membership, Patient, Procedure

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TRACKED = (Clinic, Membership, Patient, Procedure, FollowUpVisit, AdverseEvent)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (*TRACKED, get_user_model())}


class LoadDemoDataTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        out = io.StringIO()
        started = time.monotonic()
        # conftest's fast hasher is a function-scoped fixture; class-level data needs it too.
        with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
            call_command("load_demo_data", stdout=out)
        cls.seconds = time.monotonic() - started
        cls.output = out.getvalue()
        cls.today = rules.today()

    def active_events(self):
        return AdverseEvent.objects.active()

    def proportion(self, category: str) -> float:
        with_event = Procedure.objects.filter(
            adverse_events__category=category, adverse_events__retracted_at__isnull=True
        ).distinct()
        return with_event.count() / Procedure.objects.count()

    def test_it_loads_a_few_hundred_patients_at_several_clinics(self):
        assert Clinic.objects.count() == len(demo.CLINICS)
        assert Clinic.objects.values("country").distinct().count() == 5
        assert Clinic.objects.filter(gmp_certified=True).exists()
        assert Clinic.objects.filter(gmp_certified=False).exists()
        assert Patient.objects.count() == demo.DEFAULT_PATIENTS
        assert not Patient.objects.annotate(n=Count("procedures")).filter(n=0).exists()
        assert 300 <= Procedure.objects.count() <= 500
        assert FollowUpVisit.objects.count() == 10 * Procedure.objects.count()
        assert 1000 <= FollowUpVisit.objects.filter(completed_on__isnull=False).count() <= 3000
        assert 250 <= self.active_events().count() <= 700
        for clinic in Clinic.objects.all():
            assert clinic.patients.count() >= 30, clinic.code

    def test_it_finishes_well_under_a_minute(self):
        assert self.seconds < 60

    def test_it_prints_the_demo_logins_with_a_password_that_passes_the_validators(self):
        assert "Demo data loaded" in self.output
        assert demo.DEMO_PASSWORD in self.output
        for username in ("clinician_madrid", "clinician_berlin", "coordinator_madrid", "registry_admin"):
            assert username in self.output
            validate_password(demo.DEMO_PASSWORD, get_user_model().objects.get(username=username))

    def test_every_stored_row_passes_full_clean(self):
        for model in TRACKED:
            related = ["procedure__patient"] if model is AdverseEvent else []
            related += ["procedure"] if model is FollowUpVisit else []
            for row in model.objects.select_related(*related):
                row.full_clean()

    def test_procedures_follow_the_cell_rules_and_were_performed_in_the_last_five_years(self):
        assert not Procedure.objects.filter(
            cell_type__in=ALLOGENEIC_ONLY_CELL_TYPES, cell_source=CellSource.AUTOLOGOUS
        ).exists()
        expanded = Procedure.objects.filter(cell_type__in=rules.EXPANDED_CELL_TYPES)
        assert expanded.exists()
        assert not expanded.exclude(processing=Processing.CULTURE_EXPANDED).exists()
        assert Procedure.objects.filter(performed_on__lt=self.today.replace(year=self.today.year - 5)).count() == 0
        assert Procedure.objects.filter(performed_on__gte=self.today).count() == 0
        sites = dict(Procedure.objects.values_list("site").annotate(n=Count("id")))
        assert max(sites, key=sites.get) == "knee"
        assert {"knee", "hip", "shoulder", "spine"} <= set(sites)
        assert not Procedure.objects.filter(patient__enrolled_on__gt=F("performed_on")).exists()

    def test_visits_are_mostly_completed_early_fewer_later_and_none_in_the_future(self):
        assert not FollowUpVisit.objects.filter(completed_on__gte=self.today).exists()
        closed = FollowUpVisit.objects.filter(window_end__lt=self.today)

        def share(label: str) -> float:
            rows = closed.filter(visit=label)
            return rows.filter(completed_on__isnull=False).count() / rows.count()

        assert share("day_2") > 0.75
        assert share("day_2") > share("month_6") > share("year_2")
        # Nobody is seen after withdrawal or death.
        assert not FollowUpVisit.objects.filter(completed_on__gt=F("procedure__patient__withdrawn_on")).exists()
        assert not FollowUpVisit.objects.filter(completed_on__gt=F("procedure__patient__death_date")).exists()

    def test_some_patients_withdrew_and_a_few_died_with_a_fatal_event(self):
        assert 5 <= Patient.objects.filter(withdrawn_on__isnull=False).count() <= 40
        dead = Patient.objects.filter(death_date__isnull=False)
        assert 1 <= dead.count() <= 10
        assert not dead.filter(withdrawn_on__isnull=False).exists()
        fatal = self.active_events().filter(outcome=Outcome.FATAL)
        assert set(fatal.values_list("procedure__patient", flat=True)) == set(dead.values_list("pk", flat=True))
        assert not fatal.exclude(grade=5).exists()

    def test_event_rates_match_the_design_figures(self):
        # DESIGN.md 1: injection-site reactions in most patients; infection about 1-3 %.
        assert 0.5 <= self.proportion(Category.INJECTION_SITE_REACTION) <= 0.8
        assert 0.05 <= self.proportion(Category.SYSTEMIC_REACTION) <= 0.3
        assert 0.003 <= self.proportion(Category.INFECTION) <= 0.05
        assert self.proportion(Category.NEOPLASM) <= 0.02
        for rare in (Category.ECTOPIC_TISSUE, Category.IMMUNE_REACTION, Category.ALLERGIC_REACTION):
            assert self.proportion(rare) <= 0.05, rare

    def test_events_have_plausible_onsets_and_seriousness(self):
        events = self.active_events()
        early = events.filter(category=Category.INJECTION_SITE_REACTION)
        assert not early.filter(onset_on__gt=F("procedure__performed_on") + timedelta(days=2)).exists()
        infections = events.filter(category=Category.INFECTION)
        assert not infections.filter(onset_on__lt=F("procedure__performed_on") + timedelta(days=3)).exists()
        assert not events.filter(onset_on__gte=self.today).exists()
        assert not events.filter(onset_on__lt=F("procedure__patient__enrolled_on")).exists()
        any_criterion = Q()
        for criterion in SERIOUS_CRITERIA.values():
            any_criterion |= Q(**{criterion: True})
        assert events.filter(serious=True).count() == events.filter(any_criterion).count() >= 1
        assert events.filter(grade__gte=2).exists()
        # Immune reactions are commoner with donor cells.
        immune = events.filter(category=Category.IMMUNE_REACTION)
        assert immune.filter(procedure__cell_source=CellSource.ALLOGENEIC).count() >= immune.count() / 2

    def test_a_few_events_are_retracted_with_a_reason(self):
        retracted = AdverseEvent.objects.filter(retracted_at__isnull=False)
        assert 3 <= retracted.count() <= 15
        assert not retracted.filter(retraction_reason="").exists()
        assert not retracted.filter(retracted_by__isnull=True).exists()

    def test_every_write_is_audited_under_the_load_demo_data_context(self):
        for model in TRACKED:
            history = apps.get_model(model._meta.app_label, f"{model.__name__}Event")
            assert history.objects.exists(), model
            actions = set(history.objects.values_list("pgh_context__metadata__action", flat=True))
            assert actions == {"load_demo_data"}, model

    def test_a_second_run_creates_nothing_and_says_so(self):
        before = _counts()
        history_before = apps.get_model("events", "AdverseEventEvent").objects.count()
        out = io.StringIO()
        call_command("load_demo_data", stdout=out)
        assert "already loaded; nothing created" in out.getvalue()
        assert _counts() == before
        assert apps.get_model("events", "AdverseEventEvent").objects.count() == history_before

    def test_a_larger_load_adds_only_the_extra_patients(self):
        summary = demo.load_demo_data(patients=demo.DEFAULT_PATIENTS + 5)
        assert summary.created["patients"] == 5
        assert summary.created["clinics"] == summary.created["users"] == 0
        assert Patient.objects.count() == demo.DEFAULT_PATIENTS + 5

    @override_settings(DEBUG=True, OTP_EXEMPT_DEMO_USERS=True)  # what scripts/run sets: no authenticator code
    def test_the_demo_users_can_log_in_to_the_admin(self):
        # Through the login form, as a person would (and as django-axes wants: with a request).
        for username in ("clinician_madrid", "clinician_berlin", "coordinator_madrid", "registry_admin"):
            credentials = {"username": username, "password": demo.DEMO_PASSWORD}
            response = self.client.post("/admin/login/?next=/admin/", credentials)
            assert response.status_code == 302, username
            assert response.headers["Location"] == "/admin/"
            index = self.client.get("/admin/")
            assert index.status_code == 200
            assert index.context["user"].username == username
            self.client.logout()

    def test_without_debug_the_demo_users_must_set_up_an_authenticator_first(self):
        credentials = {"username": "clinician_madrid", "password": demo.DEMO_PASSWORD}
        response = self.client.post("/admin/login/?next=/admin/", credentials)
        assert response.headers["Location"] == "/admin/two-factor/enrol/"
        assert self.client.get("/admin/").status_code == 302

    def test_the_demo_users_have_their_roles(self):
        admin = get_user_model().objects.get(username="registry_admin")
        assert Membership.objects.get(user=admin).role == Role.REGISTRY_ADMIN
        assert selectors.is_registry_admin(admin)
        coordinator = get_user_model().objects.get(username="coordinator_madrid")
        assert Membership.objects.get(user=coordinator).role == Role.COORDINATOR
        assert coordinator.groups.filter(name="Clinic coordinator").exists()

    def test_clinicians_see_only_their_own_clinics_patients(self):
        User = get_user_model()
        for username, code in (("clinician_madrid", "ES-MAD-01"), ("clinician_berlin", "DE-BER-01")):
            seen = selectors.patients_for_user(User.objects.get(username=username))
            assert seen.count() == Patient.objects.filter(clinic__code=code).count() > 0
            assert set(seen.values_list("clinic__code", flat=True)) == {code}
        admin = User.objects.get(username="registry_admin")
        assert selectors.patients_for_user(admin).count() == Patient.objects.count()
