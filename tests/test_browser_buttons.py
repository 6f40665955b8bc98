"""In Chromium: a secondary or destructive button never looks like the form's main action."""


import pytest

from tests import factories
from tests.browser_support import in_browser, log_in, need_chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_secondary_and_danger_submit_buttons_do_not_wear_the_primary_colour(live_server):
    need_chromium()
    learner = factories.LearnerFactory()

    def story(browser):
        page = browser.new_context(locale="vi-VN", viewport={"width": 360, "height": 740}).new_page()
        log_in(page, live_server.url, learner)
        page.goto(f"{live_server.url}/courses/my/")
        page.evaluate("""() => {
            const form = document.createElement('form');
            for (const kind of ['', 'secondary', 'danger']) {
                const b = document.createElement('button');
                b.type = 'submit'; b.className = ('btn ' + kind).trim(); b.id = 'probe-' + (kind || 'primary');
                b.textContent = kind || 'primary';
                form.appendChild(b);
            }
            document.querySelector('main').appendChild(form);
        }""")
        colour = {kind: page.eval_on_selector(f"#probe-{kind}", "b => getComputedStyle(b).backgroundColor")
                  for kind in ("primary", "secondary", "danger")}
        served = page.eval_on_selector("form[action$='/calendar-feed/rotate/'] button",
                                       "b => getComputedStyle(b).backgroundColor")
        return colour, served

    colour, served = in_browser(story)
    assert len(set(colour.values())) == 3, colour
    assert served == colour["secondary"]
