"""In Chromium, every page as everyone who can open it, in Vietnamese and in English, on a phone (360×740) and on a
desktop (1280×800): axe-core finds nothing serious or critical, no page is wider than the phone, and no form has
more than one button dressed as its main action.

The pages are those of the role walk (tests/test_role_walk.py: the URL resolver's routes, filled with the walk's
world), kept for a role when they answer it 200 with HTML, plus the API docs and the page a wrong address gives:
a page added later is audited without touching this file. axe-core is the npm package pinned in package.json
(`make install` runs `npm ci`); without it this test fails.

With SCREENSHOTS_DIR set (`make screenshots`), the walk also saves each page as a PNG:
SCREENSHOTS_DIR/<role>/<language>-<viewport>/<page>.png.
"""

import os
import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests import test_role_walk as walk
from tests.browser_support import in_browser, need_chromium

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
ROLES = {"visitor": "anonymous", "learner": "learner", "technician": "BIIC technician",
         "coordinator": "coordinator", "administrator": "admin"}
LANGUAGES = {"vi": "vi-VN", "en": "en-US"}
VIEWPORTS = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 800}}
PHONE_WIDTH = VIEWPORTS["phone"]["width"]
SERIOUS = {"serious", "critical"}
# Pages served outside the URL resolver's walk: the API's docs, and what a wrong address shows.
EXTRA = ["/api/docs", "/khong-co-trang-nay/"]
# Parts of a page fetched by its script, not pages: audited where they are shown (the live board is the same
# template /machines/live/ includes).
FRAGMENTS = {"machines/live/board/"}
# Findings accepted, by page route and axe rule ("too wide" for the phone width), each with its reason.
# None today: a finding here would be a page to mend.
EXCEPTIONS: dict[tuple[str, str], str] = {}

world = walk.world  # the role walk's world: BIIC, its machines, classes, bookings and people


def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE.relative_to(AXE.parents[2])}: run `make install` "
                    "(it runs `npm ci` from package-lock.json)", pytrace=False)
    return AXE.read_text(encoding="utf-8")


def pages_for(client: Client, w) -> list[tuple[str, str]]:
    """(route, address) of every page of the walk that answers this client 200 with HTML."""
    values = walk.path_values(w)
    found = []
    for route in walk.page_routes():
        if route not in walk.PAGES or route in FRAGMENTS:
            continue  # the role walk fails by name for a page it has no expectation for
        address = "/" + walk.fill(route, values, walk.PATH_OVERRIDES.get(route, {}), w)
        query = walk.PAGE_QUERIES.get(route, lambda w: {})(w)
        response = client.get(address, query)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            if query:
                address += "?" + "&".join(f"{key}={value}" for key, value in query.items())
            found.append((route, address))
    return found + [(extra, extra) for extra in EXTRA]


def session_cookie(user, base_url: str) -> list[dict]:
    if not user.is_authenticated:
        return []
    client = Client()
    client.force_login(user)
    return [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
             "url": base_url}]


def file_name(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", address).strip("-") or "root"


AUDIT = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    const forms = [...document.querySelectorAll('main form')].filter(form =>
        form.querySelectorAll('button[type=submit]:not(.secondary):not(.danger):not(.link), '
                              + 'input[type=submit]:not(.secondary):not(.danger)').length > 1);
    return {
        violations: result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                 targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))})),
        width: document.documentElement.scrollWidth,
        wide: [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5
                         && !(e.parentElement && e.parentElement.closest('.table-scroll, .timeline')))
            .slice(-3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                                + (e.className && e.className.baseVal === undefined ? '.' + e.className : '')),
        primaries: forms.map(form => form.getAttribute('action') || '(this page)'),
    };
}"""


def settle(page, address: str):
    if address.startswith("/api/docs"):
        page.wait_for_selector("#swagger-ui .opblock", timeout=20_000)  # Swagger UI draws the page itself


@pytest.mark.browser
@pytest.mark.timeout(1800)
@pytest.mark.django_db(transaction=True)
def test_every_page_passes_axe_and_fits_a_phone_for_every_role_in_both_languages(live_server, world):
    source = axe_source()
    need_chromium()
    base = live_server.url
    only = os.environ.get("AUDIT_ONLY", "")  # while fixing a page: audit only addresses containing this
    plan = {}
    for role, key in ROLES.items():
        user = world.users[key]
        client = Client()
        if user.is_authenticated:
            client.force_login(user)
        pages = [(route, address) for route, address in pages_for(client, world) if only in address]
        plan[role] = (pages, session_cookie(user, base))
    shots = Path(os.environ["SCREENSHOTS_DIR"]) if os.environ.get("SCREENSHOTS_DIR") else None
    started = time.monotonic()

    def story(browser):
        findings, audited = [], 0
        for role, (pages, cookies) in plan.items():
            for language, locale in LANGUAGES.items():
                context = browser.new_context(locale=locale, viewport=VIEWPORTS["phone"])
                context.add_cookies(cookies + [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language,
                                                "url": base}])
                page = context.new_page()
                for viewport, size in VIEWPORTS.items():
                    page.set_viewport_size(size)
                    for route, address in pages:
                        page.goto(base + address)
                        settle(page, address)
                        if not page.evaluate("typeof axe !== 'undefined'"):
                            page.evaluate(source)
                        seen = page.evaluate(AUDIT)
                        audited += 1
                        where = f"{address} as {role}, {language}, {viewport}"
                        for violation in seen["violations"]:
                            if violation["impact"] in SERIOUS and (route, violation["id"]) not in EXCEPTIONS:
                                findings.append(f"{where}: {violation['id']} ({violation['impact']}) "
                                                f"{violation['help']} at {violation['targets']}")
                        if viewport == "phone" and seen["width"] > PHONE_WIDTH \
                                and (route, "too wide") not in EXCEPTIONS:
                            findings.append(f"{where}: {seen['width']} px wide on a {PHONE_WIDTH} px phone "
                                            f"(past the edge: {', '.join(seen['wide'])})")
                        for action in seen["primaries"]:
                            findings.append(f"{where}: the form {action} has more than one primary button")
                        if shots:
                            folder = shots / role / f"{language}-{viewport}"
                            folder.mkdir(parents=True, exist_ok=True)
                            page.screenshot(path=str(folder / f"{file_name(address)}.png"), full_page=True)
                context.close()
        return findings, audited

    findings, audited = in_browser(story, timeout=1700)
    print(f"\naudited {audited} page views in {time.monotonic() - started:.0f} s")
    for role, (pages, _cookies) in plan.items():
        print(f"{role}: {len(pages)} pages: {' '.join(address for _route, address in pages)}")
    assert audited == sum(len(pages) for pages, _ in plan.values()) * len(LANGUAGES) * len(VIEWPORTS)
    assert not findings, f"{len(findings)} findings:\n" + "\n".join(findings)
