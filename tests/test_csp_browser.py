"""The admin, a report page and the API docs work under the Content-Security-Policy, in a real browser,
and the admin pages pass an axe-core accessibility check.

The policy is the one every environment sends (settings.CONTENT_SECURITY_POLICY; production only adds
HSTS and the HTTPS redirect). A violation is caught two ways: the page's `securitypolicyviolation`
events (recorded by a script Playwright injects before any page script) and Chromium's console
messages. The browser cannot leave this machine, so the requests for the API docs' pinned Swagger UI
files stop at the route handler: the test checks that the policy let the browser ask for exactly
those files (a refused one never reaches the handler), and that the page's own inline style and
start-up script were not refused. (Checked once by hand with the real swagger-ui-dist 5.35.0 files
served from the handler: Swagger UI renders, its SRI hashes match, no violation.)
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings

from events.models import AdverseEvent
from reports.models import IncidenceRun
from tests.factories import AdverseEventFactory, ProcedureFactory
from tests.registry.test_admin_browser import log_in, page  # noqa: F401 - the Chromium page fixture
from tests.reports.documents_data import finished_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""
CHARTS_LOADED = """() => {
  const images = [...document.querySelectorAll("img.chart")];
  return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);
}"""

# axe-core findings in Django's own admin templates (not this project's), accepted where they are:
# rule -> the CSS selector fragment every node of the finding must match. Anything else fails the test,
# and so does any finding of impact "critical".
DJANGO_ADMIN_KNOWN = {
    # Django styles breadcrumb links by colour only (the change form's breadcrumbs).
    "link-in-text-block": ".breadcrumbs",
}


@pytest.fixture
def csp_page(page):  # noqa: F811 - the Chromium page fixture
    """Return the page, recording CSP violations from events and from the console."""
    console = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda message: console.append(message.text))
    page.csp_console = console
    return page


def visit(tab, url):
    """Open url with a fresh console record (axe-core, run on the previous page, logs its own refusals)."""
    tab.csp_console.clear()
    return tab.goto(url)


def violations(tab) -> list[str]:
    """Return every CSP violation seen on the current page so far (events and console)."""
    events = tab.evaluate("window.__cspViolations || []")
    console = [text for text in tab.csp_console if "Content Security Policy" in text or "Refused to" in text]
    return [f"{tab.url}: {v}" for v in events + console]


def accessibility_problems(tab) -> list[str]:
    """Return the axe-core violations that are critical or not in DJANGO_ADMIN_KNOWN.

    Run it after the tab's CSP check: axe-core's own probes apply inline styles the policy refuses.
    """
    results = Axe().run(tab)
    problems = []
    for violation in results.response["violations"]:
        known = DJANGO_ADMIN_KNOWN.get(violation["id"])
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
        if violation["impact"] != "critical" and known and all(known in target for target in targets):
            continue
        problems.append(f"{violation['id']} ({violation['impact']}): {violation['help']}: {targets}")
    return problems


def test_the_admin_reports_and_api_docs_work_under_the_csp(csp_page, live_server, root, clinic_a, clinic_b):
    tab = csp_page
    base = live_server.url
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="Swelling A")
    ProcedureFactory(patient__clinic=clinic_a, product_lot="LOT-PICK-ME")
    finished_run(actor=root, outcomes=["any"])
    run = IncidenceRun.objects.get()

    visit(tab, f"{base}/admin/login/")
    assert violations(tab) == []
    header = tab.context.request.get(f"{base}/admin/login/").headers["content-security-policy"]
    assert "default-src 'self'" in header and "frame-ancestors 'none'" in header
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    accessibility = {"login": accessibility_problems(tab)}
    tab.csp_console.clear()
    log_in(tab, base, "root")
    assert violations(tab) == []

    # Changelist with its filters and actions.
    visit(tab, f"{base}/admin/events/adverseevent/")
    tab.wait_for_selector("#result_list")
    assert violations(tab) == []
    accessibility["changelist"] = accessibility_problems(tab)

    # Change form: the procedure autocomplete (select2, its AJAX search and its styles).
    visit(tab, f"{base}/admin/events/adverseevent/{event.pk}/change/")
    tab.click("#id_procedure + .select2 .select2-selection")
    tab.fill(".select2-search__field", "LOT-PICK")
    tab.wait_for_selector(".select2-results__option:not(.loading-results)")
    assert tab.locator(".select2-results__option").count() >= 1
    tab.keyboard.press("Escape")
    assert violations(tab) == []
    accessibility["change form"] = accessibility_problems(tab)
    assert AdverseEvent.objects.get(pk=event.pk).version == event.version  # nothing saved

    # The run's report tab: charts (PNG images) and its links.
    visit(tab, f"{base}/admin/reports/incidencerun/{run.pk}/report/")
    tab.wait_for_function(CHARTS_LOADED, timeout=60_000)
    assert violations(tab) == []
    accessibility["report"] = accessibility_problems(tab)

    # API docs: the tab's inline style (nonce) and start-up script file pass; the pinned CDN files are
    # asked for, so the policy allows them (a refused file would never reach the route handler).
    cdn_requests = []

    def answer_cdn(route):
        cdn_requests.append(route.request.url)
        route.abort()

    tab.route(re.compile(re.escape(settings.SWAGGER_UI_CDN) + "/.*"), answer_cdn)
    response = visit(tab, f"{base}/api/docs/")
    assert response.status == 200
    tab.wait_for_load_state("load")
    dist = settings.SPECTACULAR_SETTINGS["SWAGGER_UI_DIST"]
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        assert f"{dist}/{name}" in cdn_requests, name
    nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"]).group(1)
    # The browser hides the nonce attribute from the DOM but keeps it as the element's property.
    assert tab.evaluate("[...document.querySelectorAll('style')].map(s => s.nonce)") == [nonce]
    assert violations(tab) == []
    assert accessibility == {name: [] for name in accessibility}
