"""Outcome definitions (DESIGN 2b): stored defaults; versions never updated; edited by registry administrators."""

from __future__ import annotations

import importlib
import json

import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from core.integrity import save_or_field_error
from core.models import ConcurrentUpdate
from reports import outcomes
from reports.choices import OUTCOME_LABELS, OUTCOMES
from reports.models import OutcomeDefinition
from reports.services import outcome_definition_save

# DESIGN 2b, copied by hand: injection_site_reaction 0-7, systemic_reaction 0-7, allergic_reaction 0-30,
# neurological 0-30, infection 0-90, immune_reaction 0-90, thromboembolic 0-90, ectopic_tissue 0-open,
# neoplasm 180-open, other, any, serious and grade_3_plus 0-open.
DESIGN_2B = {
    "injection_site_reaction": (0, 7),
    "systemic_reaction": (0, 7),
    "allergic_reaction": (0, 30),
    "neurological": (0, 30),
    "infection": (0, 90),
    "immune_reaction": (0, 90),
    "thromboembolic": (0, 90),
    "ectopic_tissue": (0, None),
    "neoplasm": (180, None),
    "other": (0, None),
    "any": (0, None),
    "serious": (0, None),
    "grade_3_plus": (0, None),
}
CHANGELIST = "/admin/reports/outcomedefinition/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _change_url(definition: OutcomeDefinition) -> str:
    return reverse("admin:reports_outcomedefinition_change", args=[definition.pk])


def _form(definition: OutcomeDefinition, **changes) -> dict:
    data = {
        "label": definition.label,
        "window_start_day": definition.window_start_day,
        "window_end_day": "" if definition.window_end_day is None else definition.window_end_day,
        "note": definition.note,
        "based_on_version": definition.version,
    }
    return {**data, **changes}


def _current(code: str) -> OutcomeDefinition:
    return OutcomeDefinition.objects.filter(code=code).order_by("-version").first()


# --- the defaults ------------------------------------------------------------------------------------


def test_the_data_migration_freezes_the_defaults_of_design_2b():
    migration = importlib.import_module("reports.migrations.0006_outcome_definitions_defaults")
    assert {code: (start, end) for code, (_, start, end) in migration.DEFAULTS.items()} == DESIGN_2B
    assert {code: label for code, (label, _, _) in migration.DEFAULTS.items()} == OUTCOME_LABELS


def test_version_1_of_every_outcome_is_stored_with_the_defaults(db):
    rows = OutcomeDefinition.objects.filter(version=1)
    assert sorted(r.code for r in rows) == sorted(OUTCOMES)
    assert {r.code: (r.window_start_day, r.window_end_day) for r in rows} == DESIGN_2B
    assert all(r.label == OUTCOME_LABELS[r.code] and r.qualifies == r.code for r in rows)
    assert all(r.created_by_id is None for r in rows)
    assert OutcomeDefinition.objects.count() == len(OUTCOMES)  # version 1 only


def test_current_definitions_windows_and_their_frozen_form(db):
    current = outcomes.current_definitions()
    assert [d.code for d in current] == list(OUTCOMES)  # canonical order
    assert outcomes.current_windows() == DESIGN_2B
    frozen = outcomes.freeze()
    assert json.loads(json.dumps(frozen)) == frozen  # JSON-ready
    assert frozen[OUTCOMES.index("neoplasm")] == {
        "code": "neoplasm",
        "label": "Neoplasm",
        "qualifies": "neoplasm",
        "window_start_day": 180,
        "window_end_day": None,
        "version": 1,
    }


def test_the_current_definition_is_the_highest_version(root):
    outcome_definition_save(
        actor=root, code="infection", label="Infection", window_start_day=0, window_end_day=60, based_on_version=1
    )
    outcome_definition_save(
        actor=root, code="infection", label="Infection", window_start_day=2, window_end_day=45, based_on_version=2
    )
    assert outcomes.current_windows()["infection"] == (2, 45)
    assert outcomes.freeze()[OUTCOMES.index("infection")]["version"] == 3
    assert outcomes.current_windows()["neoplasm"] == (180, None)  # the others untouched


def test_an_emptied_table_gets_the_defaults_back(db):
    # A test-database flush empties the table (TRUNCATE fires no row trigger); post_migrate restores it.
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {OutcomeDefinition._meta.db_table}")
    # Meanwhile the built-in defaults stand in, as version 0 (no stored row).
    assert outcomes.current_windows() == DESIGN_2B
    assert {d["version"] for d in outcomes.freeze()} == {0}
    assert sorted(outcomes.restore_defaults()) == sorted(OUTCOMES)
    assert {d["version"] for d in outcomes.freeze()} == {1}
    assert outcomes.restore_defaults() == []  # a database keeps what it has


# --- versions are append-only --------------------------------------------------------------------------


def test_the_database_refuses_to_update_or_delete_a_stored_version(db):
    definition = _current("infection")
    with pytest.raises(DatabaseError), transaction.atomic():
        OutcomeDefinition.objects.filter(pk=definition.pk).update(window_end_day=5)
    with pytest.raises(DatabaseError), transaction.atomic():
        OutcomeDefinition.objects.filter(pk=definition.pk).delete()
    definition.refresh_from_db()
    assert (definition.window_start_day, definition.window_end_day, definition.version) == (0, 90, 1)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(-1, None, "window_start_day"), (10, 5, "window_end_day")],
)
def test_the_database_backs_the_window_rules_with_a_field_level_error(db, start, end, field):
    row = OutcomeDefinition(
        code="infection",
        label="Infection",
        qualifies="infection",
        window_start_day=start,
        window_end_day=end,
        version=9,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()
    with pytest.raises(ValidationError) as err:
        save_or_field_error(row)  # a write racing past clean(): the rule's field and message
    assert list(err.value.message_dict) == [field]


def test_the_service_stores_the_next_version_and_audits_who(root):
    stored = outcome_definition_save(
        actor=root,
        code="neurological",
        label="Neurological complication",
        window_start_day=0,
        window_end_day=14,
        note="Committee decision.",
        based_on_version=1,
    )
    assert (stored.version, stored.window_end_day, stored.created_by, stored.qualifies) == (
        2,
        14,
        root,
        "neurological",
    )
    first = OutcomeDefinition.objects.get(code="neurological", version=1)
    assert (first.window_start_day, first.window_end_day) == (0, 30)
    (event,) = pghistory.models.Events.objects.tracks(stored)
    assert event.pgh_label == "insert"
    assert event.pgh_context == {"user": root.pk, "action": "outcome_definition_save"}


def test_saving_unchanged_values_stores_no_new_version(root):
    current = _current("other")
    same = outcome_definition_save(
        actor=root, code="other", label="Other", window_start_day=0, window_end_day=None, note=current.note,
        based_on_version=1,
    )  # fmt: skip
    assert same.pk == current.pk and OutcomeDefinition.objects.filter(code="other").count() == 1


def test_an_edit_based_on_an_old_version_is_refused(root):
    outcome_definition_save(
        actor=root, code="infection", label="Infection", window_start_day=0, window_end_day=60, based_on_version=1
    )
    with pytest.raises(ConcurrentUpdate):
        outcome_definition_save(
            actor=root, code="infection", label="Infection", window_start_day=0, window_end_day=30, based_on_version=1
        )
    assert outcomes.current_windows()["infection"] == (0, 60)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(-1, 10, "window_start_day"), (30, 7, "window_end_day")],
)
def test_the_service_refuses_a_bad_window_on_its_field(root, start, end, field):
    with pytest.raises(ValidationError) as err:
        outcome_definition_save(
            actor=root, code="infection", label="Infection", window_start_day=start, window_end_day=end,
            based_on_version=1,
        )  # fmt: skip
    assert list(err.value.message_dict) == [field]
    assert OutcomeDefinition.objects.filter(code="infection").count() == 1


# --- the admin -------------------------------------------------------------------------------------------


def test_an_administrator_edit_in_the_admin_stores_version_2_and_keeps_version_1(root):
    client = _client(root)
    first = _current("infection")
    page = client.get(_change_url(first))
    assert page.status_code == 200 and b"based_on_version" in page.content
    response = client.post(_change_url(first), _form(first, window_end_day=60, note="Shorter follow-up of infections."))
    assert response.status_code == 302, response.content.decode()[:3000]
    versions = list(OutcomeDefinition.objects.filter(code="infection").order_by("version"))
    assert [(d.version, d.window_start_day, d.window_end_day) for d in versions] == [(1, 0, 90), (2, 0, 60)]
    assert versions[0].pk == first.pk and versions[1].pk != first.pk  # a new row, never an UPDATE
    assert (versions[1].created_by, versions[1].note) == (root, "Shorter follow-up of infections.")
    assert outcomes.current_windows()["infection"] == (0, 60)
    (event,) = pghistory.models.Events.objects.tracks(versions[1])
    assert event.pgh_context["user"] == root.pk


def test_the_changelist_shows_current_definitions_and_the_history_on_request(root):
    first = _current("infection")
    _client(root).post(_change_url(first), _form(first, window_end_day=60))
    current = _client(root).get(CHANGELIST)
    assert current.status_code == 200
    shown = list(current.context["cl"].result_list)
    assert [d.code for d in shown] == list(OUTCOMES)
    assert next(d for d in shown if d.code == "infection").version == 2
    history = _client(root).get(CHANGELIST, {"versions": "all"})
    assert sorted(d.version for d in history.context["cl"].result_list if d.code == "infection") == [1, 2]
    assert len(history.context["cl"].result_list) == len(OUTCOMES) + 1


def test_an_old_version_is_read_only(root):
    first = _current("infection")
    client = _client(root)
    client.post(_change_url(first), _form(first, window_end_day=60))
    page = client.get(_change_url(first))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    refused = client.post(_change_url(first), _form(first, window_end_day=10))
    assert refused.status_code == 403
    assert sorted(OutcomeDefinition.objects.filter(code="infection").values_list("window_end_day", flat=True)) == [
        60,
        90,
    ]


def test_a_form_opened_before_another_edit_is_refused(root):
    first = _current("infection")
    client = _client(root)
    # Another administrator stores version 2 while this form (based on version 1) is open.
    outcome_definition_save(
        actor=root, code="infection", label="Infection", window_start_day=0, window_end_day=60, based_on_version=1
    )
    second = _current("infection")
    response = client.post(_change_url(second), _form(first, window_end_day=10))
    assert response.status_code == 200
    assert "stored after the one you opened" in str(response.context["adminform"].form.non_field_errors())
    assert outcomes.current_windows()["infection"] == (0, 60)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"window_start_day": -1}, "window_start_day", "day 0"),
        ({"window_start_day": 30, "window_end_day": 7}, "window_end_day", "cannot end before it starts"),
    ],
)
def test_the_admin_form_shows_bad_windows_on_their_field(root, changes, field, message):
    first = _current("allergic_reaction")
    response = _client(root).post(_change_url(first), _form(first, **changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]
    assert OutcomeDefinition.objects.filter(code="allergic_reaction").count() == 1


def test_nobody_deletes_a_definition(root):
    first = _current("infection")
    url = reverse("admin:reports_outcomedefinition_delete", args=[first.pk])
    assert _client(root).post(url, {"post": "yes"}).status_code == 403
    assert OutcomeDefinition.objects.filter(pk=first.pk).exists()


def test_every_code_is_stored_so_there_is_nothing_to_add(root):
    assert _client(root).get(reverse("admin:reports_outcomedefinition_add")).status_code == 403


@pytest.mark.parametrize("persona", ["alice", "dora", "charlie"])
def test_clinic_members_have_no_access(db, persona, request):
    user = request.getfixturevalue(persona)
    client = _client(user)
    first = _current("infection")
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(_change_url(first)).status_code in (302, 403)
    assert client.post(_change_url(first), _form(first, window_end_day=1)).status_code in (302, 403)
    assert client.get(reverse("admin:reports_outcomedefinition_add")).status_code == 403
    assert b"outcomedefinition" not in client.get("/admin/").content
    assert OutcomeDefinition.objects.filter(code="infection").count() == 1
