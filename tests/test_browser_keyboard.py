"""In Chromium with the keyboard only (Tab, Enter, Space, typing), on a phone-sized screen: a learner goes from the
class list to a confirmed seat; a technician at the door checks a ticket code in, then finds a learner by name and
checks them in by hand. Wherever the focus stops on the way, it is visibly marked."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from fablab_ops.booking.models import CheckInRecord
from fablab_ops.courses.models import SeatBooking, SeatStatus
from tests import factories
from tests.browser_support import PHONE, in_browser, need_chromium, soon_within_today

FOCUSED = """() => {
    const e = document.activeElement, style = getComputedStyle(e);
    return {text: (e.innerText || e.value || e.getAttribute('aria-label') || '').trim(), tag: e.tagName, id: e.id,
            style: style.outlineStyle + ' ' + style.outlineWidth,
            ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
}"""


def session_cookies(base, user) -> list[dict]:
    """Signed in before the story (the ORM stays in the test's thread); the story is about the keyboard."""
    client = Client()
    client.force_login(user)
    return [{"name": settings.SESSION_COOKIE_NAME, "url": base,
             "value": client.cookies[settings.SESSION_COOKIE_NAME].value}]


def phone_page(browser, cookies):
    context = browser.new_context(locale="vi-VN", viewport=PHONE)
    context.add_cookies(cookies)
    return context.new_page()


def tab_to(page, wanted: str, *, limit=60) -> dict:
    """Press Tab until the focus is on something saying `wanted`; every stop must show where the focus is."""
    unmarked = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused["tag"] != "BODY" and not focused["ring"]:
            unmarked.append(focused["text"][:40] or f"{focused['tag']}#{focused['id']} {focused['style']}")
        if focused["tag"] in ("A", "BUTTON", "SUMMARY") and wanted in focused["text"]:
            assert not unmarked, f"focus not visible on: {unmarked}"
            return focused
    raise AssertionError(f"{wanted!r} not reached with {limit} presses of Tab")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_learner_books_a_seat_from_the_class_list_with_the_keyboard_only(live_server):
    need_chromium()
    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    start = soon_within_today() + timedelta(days=2)
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab, title_vi="Lập trình Arduino ứng dụng"),
                                       start=start, end=start + timedelta(hours=3))
    learner = factories.LearnerFactory(full_name="Phạm Thị Hồng Nhung")

    cookies = session_cookies(live_server.url, learner)

    def story(browser):
        page = phone_page(browser, cookies)
        page.goto(f"{live_server.url}/courses/")
        tab_to(page, "Lập trình Arduino ứng dụng")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/courses/sessions/{session.pk}/")
        tab_to(page, "Đăng ký chỗ")
        page.keyboard.press("Enter")
        page.wait_for_selector(".qr svg")
        return page.inner_text("main")

    ticket = in_browser(story)
    booking = SeatBooking.objects.get(session=session, learner=learner)
    assert booking.status == SeatStatus.CONFIRMED
    assert "Lập trình Arduino ứng dụng" in ticket


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_technician_checks_in_by_code_and_by_name_with_the_keyboard_only(live_server):
    need_chromium()
    from fablab_ops.booking import tickets

    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    start = soon_within_today()
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab, title_vi="Lập trình Arduino ứng dụng"),
                                       start=start, end=start + timedelta(hours=3))
    with_ticket = factories.SeatBookingFactory(session=session, learner=factories.LearnerFactory(full_name="Lê Văn Vé"))
    by_name = factories.SeatBookingFactory(session=session,
                                           learner=factories.LearnerFactory(full_name="Đỗ Thị Không Vé"))
    technician = factories.TechnicianFactory(labs=[lab])
    code = tickets.sign(tickets.SEAT, with_ticket.ticket_code)

    cookies = session_cookies(live_server.url, technician)

    def story(browser):
        page = phone_page(browser, cookies)
        page.goto(f"{live_server.url}/booking/labs/{lab.slug}/scanner/")
        # The code field has the focus on arrival (a USB scanner types into it); a person types just as well.
        assert page.evaluate(FOCUSED)["id"] == "scan-token"
        page.keyboard.type(code)
        page.keyboard.press("Enter")
        verdict = page.wait_for_selector("#scan-result.ok").inner_text()

        page.goto(f"{live_server.url}/booking/labs/{lab.slug}/scanner/")
        field = None
        for _ in range(40):
            page.keyboard.press("Tab")
            field = page.evaluate(FOCUSED)
            if field["id"] == "door-q":
                break
        assert field and field["id"] == "door-q" and field["ring"], field
        page.keyboard.type("Không Vé")
        page.keyboard.press("Enter")
        page.wait_for_url("**q=*")
        tab_to(page, "Check-in thủ công")
        page.keyboard.press("Space")
        page.wait_for_selector("#door-list tr:has-text('Không Vé') .badge.ok")
        return verdict

    verdict = in_browser(story)
    assert "Lê Văn Vé" in verdict and "Check-in thành công" in verdict
    for booking in (with_ticket, by_name):
        booking.refresh_from_db()
        assert booking.checked_in_at is not None, booking.learner.full_name
    assert CheckInRecord.objects.count() == 2
