"""A deterministic fuzz of the whole admin: no input may answer 5xx.

Every ModelAdmin on the admin site is found from its registry, so a new admin is covered without
editing this file. As a clinician (alice) and as the registry administrator (root) every admin of the
project's apps, and as a technical superuser every other admin (users, tokens, authenticators,
lockouts, the audit trail: only a superuser opens all of them), each changelist the persona may open
gets:

- every list filter's parameters (from the changelist's own filter specs), the date hierarchy's,
  search (q), ordering (o), page (p), "Show counts" (_facets) and the other admin flags, each given
  junk: NUL, a lone surrogate, bytes that are not UTF-8, a huge string, wrong types, bad ids; and the
  parameters other pages link to (LINKED_PARAMETERS);
- every admin action with junk in _selected_action, and junk action names, index and select_across;
- every autocomplete field with a junk term and page, plus junk app_label/model_name/field_name;
- its add form and one row's change form, posted once per field with that field replaced by junk
  (the rest of the form as rendered, so each junk value meets the real validation).

Each case runs in a savepoint rolled back afterwards, so every case starts from the same rows. The
junk values a parameter or a field gets rotate through the lists by its position, so the run is the
same every time and bounded (about a minute); the number of cases is printed in pytest's terminal
summary ("admin fuzz: N cases ...").
"""

from __future__ import annotations

import time
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR, SEARCH_VAR
from django.db import transaction
from django.urls import reverse

from tests.conftest import PASSWORD, confirmed_device
from tests.factories import AdverseEventFactory, ProcedureFactory, UserFactory

pytestmark = pytest.mark.django_db

HUGE = "9" * 20_000  # in a URL; a form field gets FORM_HUGE
FORM_HUGE = "x" * 20_000
# Refused by core.middleware before any view: each costs little, so every parameter gets all of them.
ENCODING_JUNK = ["\x00", "\ud800", b"\xff\xfe", "a\x00b"]
# Reach the views: a parameter gets SEMANTIC_PER_PARAMETER of them, rotating by its position.
SEMANTIC_JUNK = [
    "abc", "-1", "0", "1.5", "99999999999999999999999", "", "2024-13-45", "true", "[]", "<script>x</script>",
    "' OR 1=1 --", "%", "\u0663", "\u00b2", "\uff11\uff12", "1e400", "nan", "  7  ", "\x01", "\u202e", HUGE,
    "-", "__", "0-0", "1,2", "null", "None", "9223372036854775808", "-9223372036854775809",
]  # fmt: skip
SEMANTIC_PER_PARAMETER = 2
FORM_JUNK = [
    FORM_HUGE, "abc", "99999999999999999999999", "-1", "2024-13-45", "\x00", "\ud800", "", "<b>x</b>", "1e400",
    "\u00b2", "\x01", "9223372036854775808", "0", "[]",
]  # fmt: skip
FORM_JUNK_PER_FIELD = 1
FORM_SWEEPS = 6  # posts with every field junk at once; field i gets FORM_JUNK[sweep + i]
ACTION_IDS = ["abc", "1.5", "99999999999999999999999", "", "\x00", "-1", "\u0663", "9223372036854775808"]
ADMIN_FLAGS = [ORDER_VAR, PAGE_VAR, "_facets", "e", "all", "_to_field", "_popup", "_changelist_filters"]
# Read by a changelist though no filter names them until they are given: pghistory's audit trail takes
# ?obj=<app.model>:<pk>, ?model=, ?method= and ?back= from a record's History page.
LINKED_PARAMETERS = {
    "obj": ["registry.patient:abc", "registry.patient:99999999999999999999", "no.such:1"],
    "model": ["no.such"],
    "method": ["abc"],
    "back": ["javascript:alert(1)"],
}
# The project's own admins; the superuser persona fuzzes only the others (the clinical ones are alice's and root's).
PROJECT_APPS = {"core", "registry", "events", "reports"}


def encode(value: str | bytes) -> str:
    """Return ``value`` percent-encoded as a client would send it, lone surrogates and raw bytes included."""
    if isinstance(value, bytes):
        return quote(value, safe="")
    return quote(value, safe="", encoding="utf-8", errors="surrogatepass")


def urlencode(pairs: list[tuple[str, str | bytes]]) -> str:
    return "&".join(f"{encode(name)}={encode(value)}" for name, value in pairs)


def rotate(values: list, start: int, count: int) -> list:
    """Return ``count`` values of ``values`` from position ``start`` on, wrapping around."""
    return [values[(start + i) % len(values)] for i in range(min(count, len(values)))]


class FormScraper(HTMLParser):
    """Collect what a browser would submit from a rendered admin form (id="<model>_form")."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or attrs.get("disabled") is not None:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file", "image", "reset"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.fields.append((name, attrs.get("value") or ("on" if attrs.get("type") == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
            self.fields.append((name, ""))
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields[-1] = (self._select, attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


class Fuzz:
    """Send cases as one persona; record every answer >= 500 (or exception) with what caused it."""

    def __init__(self, client, persona: str, tally: Counter):
        self.client = client
        self.persona = persona
        self.tally = tally
        self.failures: list[str] = []

    def send(self, method: str, url: str, query: str = "", body: str | None = None):
        self.tally[self.persona] += 1
        target = f"{url}?{query}" if query else url
        try:
            # Every case in a savepoint rolled back afterwards: a case that saves leaves no trace.
            with transaction.atomic():
                if method == "GET":
                    response = self.client.get(target)
                else:
                    response = self.client.post(
                        target, data=body or "", content_type="application/x-www-form-urlencoded"
                    )
                transaction.set_rollback(True)
        except Exception as exc:  # the test client re-raises what the view raised
            self.failures.append(f"{self.persona} {method} {target[:300]!r} {body and body[:300]!r}: {exc!r}"[:900])
            return None
        if response.status_code >= 500:
            self.failures.append(f"{self.persona} {method} {target[:300]!r}: {response.status_code}")
        return response


def changelist_parameters(cl, model_admin) -> list[str]:
    """Return every query parameter the changelist reads: its filters', the date hierarchy's, search, flags."""
    names = [name for spec in cl.filter_specs for name in spec.expected_parameters()]
    if cl.date_hierarchy:
        names += [f"{cl.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    if model_admin.search_fields:
        names.append(SEARCH_VAR)
    return [*dict.fromkeys(names), *ADMIN_FLAGS]


def fuzz_changelist(fuzz: Fuzz, url: str, cl, model_admin) -> None:
    parameters = changelist_parameters(cl, model_admin)
    for position, name in enumerate(parameters):
        for value in ENCODING_JUNK + rotate(SEMANTIC_JUNK, position * SEMANTIC_PER_PARAMETER, SEMANTIC_PER_PARAMETER):
            fuzz.send("GET", url, urlencode([(name, value)]))
        if name not in ADMIN_FLAGS:
            # The same parameter twice, with counts shown: lists and facets take other code paths.
            fuzz.send("GET", url, urlencode([(name, "1"), (name, "abc"), ("_facets", "True")]))
    fuzz.send("GET", url, urlencode([(name, "abc") for name in parameters]))
    for name, values in LINKED_PARAMETERS.items():
        for value in values:
            fuzz.send(
                "GET", url, urlencode([(name, value), ("method", "tracks")] if name == "obj" else [(name, value)])
            )


def fuzz_actions(fuzz: Fuzz, url: str, model_admin, request, visible_pk) -> None:
    actions = list(model_admin.get_actions(request))
    for name in actions:
        for junk in ACTION_IDS:
            fuzz.send(
                "POST", url, body=urlencode([("action", name), (helpers.ACTION_CHECKBOX_NAME, junk), ("index", "0")])
            )
        if visible_pk is not None:
            fuzz.send(
                "POST", url,
                body=urlencode([("action", name), (helpers.ACTION_CHECKBOX_NAME, str(visible_pk)),
                                (helpers.ACTION_CHECKBOX_NAME, "abc"), ("index", "0")]),
            )  # fmt: skip
    for pairs in (
        [("action", "no_such_action"), (helpers.ACTION_CHECKBOX_NAME, "1"), ("index", "0")],
        [("action", "\x00"), (helpers.ACTION_CHECKBOX_NAME, "1")],
        [("action", actions[0] if actions else "x"), (helpers.ACTION_CHECKBOX_NAME, "1"), ("index", "abc")],
        [("action", actions[0] if actions else "x"), ("select_across", "abc"), ("index", "99999999999999999999")],
        [("action", ""), (helpers.ACTION_CHECKBOX_NAME, "\ud800")],
    ):
        fuzz.send("POST", url, body=urlencode(pairs))


def fuzz_autocomplete(fuzz: Fuzz, model, model_admin, request) -> None:
    url = reverse("admin:autocomplete")
    base = [("app_label", model._meta.app_label), ("model_name", model._meta.model_name)]
    for position, field in enumerate(model_admin.get_autocomplete_fields(request)):
        for junk in ENCODING_JUNK + rotate(SEMANTIC_JUNK, position, 6):
            fuzz.send("GET", url, urlencode([*base, ("field_name", field), ("term", junk)]))
        for junk in ("abc", "0", "-1", "99999999999999999999", "last", "\x00"):
            fuzz.send("GET", url, urlencode([*base, ("field_name", field), ("term", ""), ("page", junk)]))


def scrape_form(response, model) -> list[tuple[str, str]]:
    scraper = FormScraper(f"{model._meta.model_name}_form")
    scraper.feed(response.content.decode())
    return scraper.fields


def fuzz_form(fuzz: Fuzz, url: str, model) -> None:
    response = fuzz.send("GET", url)
    if response is None or response.status_code != 200:
        return
    fields = scrape_form(response, model)
    # The main form, the inline management forms and each inline's first row: later rows repeat the first.
    names = [n for n in dict.fromkeys(name for name, _ in fields) if "-" not in n or "-0-" in n or n.endswith("_FORMS")]
    for position, name in enumerate(names):
        for junk in rotate(FORM_JUNK, position * FORM_JUNK_PER_FIELD, FORM_JUNK_PER_FIELD):
            body = [(n, junk if n == name else v) for n, v in fields]
            fuzz.send("POST", url, body=urlencode(body))
    # Then every field at once; the values rotate by field, so each value of FORM_JUNK reaches many fields.
    for sweep in range(FORM_SWEEPS):
        body = [(n, FORM_JUNK[(sweep + names.index(n)) % len(FORM_JUNK)] if n in names else v) for n, v in fields]
        fuzz.send("POST", url, body=urlencode(body))


def fuzz_persona(client, persona: str, tally: Counter) -> tuple[list[str], list[str]]:
    """Return (failures, changelists fuzzed) of the admins of the site ``persona`` is for."""
    fuzz = Fuzz(client, persona, tally)
    covered = []
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        opts = model._meta
        if (persona == "superuser") == (opts.app_label in PROJECT_APPS):
            continue
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = fuzz.send("GET", url)
        if response is None or response.status_code != 200:
            # Not the persona's to open: junk must still be refused, never crash.
            for value in ENCODING_JUNK + SEMANTIC_JUNK[:3]:
                fuzz.send("GET", url, urlencode([("q", value), ("o", value)]))
            continue
        covered.append(opts.label)
        if "cl" not in response.context:
            # A page of its own in place of the change list (the Signals page): junk must not crash it.
            for value in ENCODING_JUNK + SEMANTIC_JUNK:
                fuzz.send("GET", url, urlencode([("q", value), ("o", value), ("run", value)]))
            continue
        cl, request = response.context["cl"], response.wsgi_request
        fuzz_changelist(fuzz, url, cl, model_admin)
        visible = [obj.pk for obj in cl.result_list[:1]]
        fuzz_actions(fuzz, url, model_admin, request, visible[0] if visible else None)
        fuzz_autocomplete(fuzz, model, model_admin, request)
        if model_admin.has_add_permission(request):
            fuzz_form(fuzz, reverse(f"admin:{opts.app_label}_{opts.model_name}_add"), model)
        if visible:
            fuzz_form(fuzz, reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[visible[0]]), model)
        for junk in ("abc", "99999999999999999999999", "-1", "%00", "\u0663"):
            for view in ("change", "history", "delete"):
                fuzz.send("GET", f"{url}{encode(junk)}/{view}/")
    autocomplete = reverse("admin:autocomplete")
    for pairs in (
        [("app_label", "\x00"), ("model_name", "x"), ("field_name", "y"), ("term", "a")],
        [("app_label", "events"), ("model_name", "adverseevent"), ("field_name", "nope"), ("term", "a")],
        [("app_label", "auth"), ("model_name", "user"), ("field_name", "groups"), ("term", HUGE)],
        [("app_label", "events"), ("model_name", "adverseevent"), ("field_name", "procedure"), ("term", "\x00")],
        [("app_label", "events")],
        [],
    ):
        fuzz.send("GET", autocomplete, urlencode(pairs))
    return fuzz.failures, covered


class FuzzReport:
    """Print the number of cases per persona in pytest's terminal summary."""

    name = "admin-fuzz-report"

    def __init__(self):
        self.tally: Counter[str] = Counter()
        self.server_errors = 0
        self.seconds = 0.0

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.tally:
            return
        terminalreporter.write_sep("-", "admin fuzz")
        per_persona = ", ".join(f"{persona} {count}" for persona, count in sorted(self.tally.items()))
        terminalreporter.write_line(
            f"admin fuzz: {sum(self.tally.values())} cases ({per_persona}), {self.server_errors} answered >= 500, "
            f"in {self.seconds:.1f} s"
        )


@pytest.fixture
def report(request) -> FuzzReport:
    manager = request.config.pluginmanager
    plugin = manager.get_plugin(FuzzReport.name)
    if plugin is None:
        plugin = FuzzReport()
        manager.register(plugin, FuzzReport.name)
    return plugin


@pytest.fixture
def world(clinic_a, clinic_b, alice, root):
    """Return one adverse event at each clinic (their procedures, patients and visits come with them)."""
    return {
        "a": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="Swelling A"),
        "b": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B"),
    }


@pytest.fixture
def superuser(db):
    user = UserFactory(username="tech", is_staff=True, is_superuser=True)
    confirmed_device(user)
    return user


@pytest.mark.parametrize("persona", ["alice", "root", "superuser"])
def test_no_admin_input_answers_a_server_error(client, world, superuser, persona, report, request):
    user = request.getfixturevalue(persona)
    assert client.login(username=user.username, password=PASSWORD)
    started = time.monotonic()
    failures, covered = fuzz_persona(client, persona, report.tally)
    report.seconds += time.monotonic() - started
    report.server_errors += len(failures)
    assert not failures, f"{len(failures)} of {report.tally[persona]} cases answered >= 500:\n" + "\n".join(
        failures[:40]
    )
    # Discovery found the admins the persona may open: the clinical ones at least, all of them as superuser.
    expected = {"registry.Patient", "registry.Procedure", "registry.FollowUpVisit", "events.AdverseEvent"}
    if persona == "superuser":
        expected = {m._meta.label for m in admin.site._registry if m._meta.app_label not in PROJECT_APPS}
    assert expected <= set(covered)
