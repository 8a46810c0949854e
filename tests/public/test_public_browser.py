"""In Chromium at a phone (390x844) and a desktop (1280x800) viewport: a registry administrator publishes a run
in the admin, the public reads the page, and a withdrawn one answers 410. axe-core finds no serious or
critical accessibility problem on any public page (index, publication, withdrawn)."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from public.models import Publication
from tests.public.conftest import build_public_registry, run_of
from tests.registry.test_admin_browser import log_in, page  # noqa: F401 - the Chromium page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
AXE_RESULTS: dict[str, dict[str, int]] = {}
# Elements reaching past the right edge of the viewport, outside a scrolling region (a page that scrolls sideways).
WIDE_ELEMENTS = """(width) => [...document.querySelectorAll("body *")]
  .filter(e => !e.closest(".scroll") && e.getBoundingClientRect().right > width + 1)
  .map(e => e.tagName + (e.id ? "#" + e.id : ""))
"""


def serious_problems(tab, name: str) -> list[str]:
    """Return axe-core's serious and critical violations on the page; record every violation (impact, rule: nodes)
    under ``name``."""
    results = Axe().run(tab).response["violations"]
    counts: dict[str, int] = {}
    for v in results:
        counts[f"{v['impact']} {v['id']}"] = len(v["nodes"])
    AXE_RESULTS[name] = counts
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in results if v["impact"] in ("serious", "critical")]


def test_an_administrator_publishes_and_the_public_reads_it_on_a_phone_and_a_desktop(page, live_server, root):  # noqa: F811
    build_public_registry()
    run = run_of()
    base = live_server.url
    page.set_viewport_size(VIEWPORTS["desktop"])
    log_in(page, base, "root")
    page.goto(f"{base}/admin/public/publication/add/")
    page.select_option("#id_run", str(run.pk))
    page.fill("#id_note", "Annual comparison 2024")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    publication = Publication.objects.get()
    assert (publication.run_id, publication.published_by, publication.note) == (run.pk, root, "Annual comparison 2024")
    page.click("#logout-form button")

    problems = {}
    for name, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        page.goto(f"{base}/public/")
        page.click(f"a[href='/public/{publication.pk}/']")
        page.wait_for_selector("#clinic-list")
        assert page.locator("h1").inner_text().startswith("Comparison of clinics")
        assert page.locator("svg[role=img] > title").count() == 3
        assert page.locator("#t-infection-clinic tbody tr").count() == 5
        # Readable without sideways scrolling of the page: wide tables scroll inside their own region.
        assert page.evaluate(WIDE_ELEMENTS, viewport["width"]) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        problems[f"publication ({name})"] = serious_problems(page, f"publication ({name})")
        page.goto(f"{base}/public/")
        problems[f"index ({name})"] = serious_problems(page, f"index ({name})")

    # Withdrawn in the admin, with a reason: the page answers 410 and says why.
    page.set_viewport_size(VIEWPORTS["desktop"])
    log_in(page, base, "root")
    page.goto(f"{base}/admin/public/publication/{publication.pk}/change/")
    page.click("#withdraw-link")
    page.fill("#id_reason", "A clinic's follow-up was entered late.")
    page.click("#withdraw")
    page.wait_for_selector(".messagelist")
    page.click("#logout-form button")
    for name, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        response = page.goto(f"{base}/public/{publication.pk}/")
        assert response.status == 410
        assert "A clinic's follow-up was entered late." in page.inner_text("main")
        problems[f"withdrawn ({name})"] = serious_problems(page, f"withdrawn ({name})")
    print("\naxe-core violations by impact (nodes), per page:", AXE_RESULTS)
    assert problems == {key: [] for key in problems}
