"""The safety admin by persona: the "Reports due" page, recording a submission, the CIOMS I form, the
figures, and the reporting rules. A row a user may not see answers 404 and nothing changes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from core.dates import today
from safety.models import DueReport, ReportingRule, Submission
from tests.safety.conftest import ICH_15, make_case

pytestmark = pytest.mark.django_db

PAGE = "admin:safety_duereport_changelist"


@pytest.fixture
def cases(clinic_a, clinic_b):
    """Return {"a": clinic A's open ICH report (due 2026-02-14: overdue), "b": clinic B's, due in 10 days}."""
    aware = today() - dt.timedelta(days=5)
    b = make_case(clinic_b, onset_on=aware, aware_on=aware, term="Knee abscess B")
    return {"a": make_case(clinic_a).due_reports.get(), "b": b.due_reports.get()}


def page(client, user, **query):
    client.force_login(user)
    return client.get(reverse(PAGE), query)


def test_alice_sees_her_clinics_report_marked_overdue_in_red_and_in_words(client, alice, cases):
    response = page(client, alice)
    html = response.content.decode()
    assert response.status_code == 200
    assert cases["a"].event.external_id in html and cases["b"].event.external_id not in html
    assert f'<tr class="overdue" data-due-report="{cases["a"].pk}">' in html
    assert '<span class="overdue-flag">overdue</span>' in html
    assert "tr.overdue td { background: #fde8e8; color: #a00000; }" in html
    assert reverse("admin:safety_duereport_submit", args=[cases["a"].pk]) in html


def test_charlie_sees_only_clinic_b_and_gets_404_for_clinic_as_report_and_form(client, charlie, cases):
    html = page(client, charlie).content.decode()
    assert cases["b"].event.external_id in html and cases["a"].event.external_id not in html
    assert f'<tr class="" data-due-report="{cases["b"].pk}">' in html  # not overdue
    for url in (
        reverse("admin:safety_duereport_submit", args=[cases["a"].pk]),
        reverse("admin:safety_duereport_change", args=[cases["a"].pk]),
        reverse("admin:safety_duereport_cioms", args=[cases["a"].event_id]),
        reverse("admin:safety_duereport_withdraw", args=[cases["a"].pk]),
    ):
        assert client.get(url).status_code in (403, 404), url
    assert client.get(reverse("admin:safety_duereport_cioms", args=[cases["a"].event_id])).status_code == 404
    response = client.post(
        reverse("admin:safety_duereport_submit", args=[cases["a"].pk]),
        {"submitted_on": "2026-02-10", "reference_number": "X-1"},
    )
    assert response.status_code == 404
    assert (DueReport.objects.get(pk=cases["a"].pk).status, Submission.objects.count()) == ("open", 0)


@pytest.mark.parametrize("persona", ["root", "sam"])
def test_administrators_and_reviewers_see_every_clinic_and_filter_by_clinic(client, request, cases, clinic_b, persona):
    user = request.getfixturevalue(persona)
    html = page(client, user).content.decode()
    assert cases["a"].event.external_id in html and cases["b"].event.external_id in html
    assert "every clinic" in html
    filtered = page(client, user, clinic=clinic_b.pk).content.decode()
    assert cases["a"].event.external_id not in filtered and cases["b"].event.external_id in filtered


def test_dora_records_a_late_submission_and_the_page_keeps_it_late(client, dora, cases):
    client.force_login(dora)
    url = reverse("admin:safety_duereport_submit", args=[cases["a"].pk])
    response = client.post(url, {"submitted_on": "2026-02-20", "reference_number": "AEMPS-2026-77"})
    assert response.status_code == 302
    submission = Submission.objects.get()
    assert (submission.submitted_by, submission.late, submission.due_report.status) == (dora, True, "submitted")
    assert cases["a"].event.external_id not in client.get(reverse(PAGE)).content.decode()  # open only by default
    html = client.get(reverse(PAGE), {"status": "submitted"}).content.decode()
    assert "AEMPS-2026-77" in html and '<span class="late-flag">late</span>' in html


def test_the_submission_form_refuses_a_future_date_and_an_unsafe_reference(client, alice, cases):
    client.force_login(alice)
    url = reverse("admin:safety_duereport_submit", args=[cases["a"].pk])
    response = client.post(url, {"submitted_on": "2099-01-01", "reference_number": "A\u200bB"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "reference_number" in errors
    response = client.post(url, {"submitted_on": "2099-01-01", "reference_number": "AB-1"})
    assert "submitted_on" in response.context["form"].errors
    assert Submission.objects.count() == 0


def test_sam_may_record_a_submission_and_withdraw_but_alice_may_not_withdraw(client, sam, alice, cases):
    client.force_login(alice)
    withdraw = reverse("admin:safety_duereport_withdraw", args=[cases["a"].pk])
    assert client.post(withdraw, {"reason": "No."}).status_code == 403
    client.force_login(sam)
    assert client.post(withdraw, {"reason": "Duplicate of a report sent by the manufacturer."}).status_code == 302
    assert DueReport.objects.get(pk=cases["a"].pk).status == "withdrawn"
    submit = reverse("admin:safety_duereport_submit", args=[cases["b"].pk])
    assert (
        client.post(submit, {"submitted_on": dt.date.today().isoformat(), "reference_number": "B-1"}).status_code == 302
    )
    assert Submission.objects.get().submitted_by == sam


def test_the_cioms_form_downloads_for_the_clinic(client, alice, cases):
    client.force_login(alice)
    response = client.get(reverse("admin:safety_duereport_cioms", args=[cases["a"].event_id]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_an_id_beyond_a_bigint_is_404(client, root, cases):
    client.force_login(root)
    assert client.get(f"/admin/safety/duereport/{2**64}/submit/").status_code == 404


class TestRules:
    def test_root_edits_a_rule_and_its_history_is_kept(self, client, root):
        client.force_login(root)
        rule = ReportingRule.objects.get(code=ICH_15)
        url = reverse("admin:safety_reportingrule_change", args=[rule.pk])
        response = client.get(url)
        assert response.status_code == 200
        data = {
            "code": rule.code,
            "name": rule.name,
            "active": "on",
            "jurisdiction": "ES, de, FR",
            "requires_serious": "on",
            "requires_related": "on",
            "requires_unexpected": "on",
            "clock_days": "15",
            "recipient": "AEMPS",
            "form": "cioms_i",
            "legal_basis": rule.legal_basis,
        }
        assert client.post(url, data).status_code == 302
        rule.refresh_from_db()
        assert (rule.jurisdiction, rule.recipient) == (["DE", "ES", "FR"], "AEMPS")
        assert rule.pgh_event_model.objects.filter(pgh_obj=rule).count() >= 2

    def test_a_rule_cannot_be_deleted_in_the_admin(self, client, root):
        client.force_login(root)
        rule = ReportingRule.objects.get(code=ICH_15)
        assert client.get(reverse("admin:safety_reportingrule_delete", args=[rule.pk])).status_code == 403

    def test_sam_reads_the_rules_without_editing_them(self, client, sam):
        client.force_login(sam)
        rule = ReportingRule.objects.get(code=ICH_15)
        url = reverse("admin:safety_reportingrule_change", args=[rule.pk])
        assert client.get(url).status_code == 200
        assert client.post(url, {"code": rule.code, "name": "Changed"}).status_code == 403
        assert ReportingRule.objects.get(pk=rule.pk).name == rule.name

    @pytest.mark.parametrize("persona", ["alice", "dora", "charlie"])
    def test_clinic_staff_do_not_see_the_rules(self, client, request, persona):
        client.force_login(request.getfixturevalue(persona))
        assert client.get(reverse("admin:safety_reportingrule_changelist")).status_code == 403
        assert client.get(reverse("admin:safety_reportingrule_add")).status_code == 403


def test_the_admin_index_links_the_reports_due_page(client, alice):
    client.force_login(alice)
    assert reverse(PAGE) in client.get(reverse("admin:index")).content.decode()
