"""Numbers in markup are for the browser, not for people: never written with a Vietnamese decimal comma."""

import re
import unicodedata
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.conftest import client_for

# A decimal comma inside a style, an SVG coordinate or a data- attribute: "11,11%", "x=\"3,5\"".
STYLE = re.compile(r'style="([^"]*)"')
DATA = re.compile(r'\sdata-[\w-]+="([^"]*)"')
SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
SVG_ATTRIBUTE = re.compile(
    r'\s(?:x|y|x1|x2|y1|y2|cx|cy|r|width|height|viewBox|transform|font-size|stroke-width)="([^"]*)"')
# In path data and point lists a comma joins the two numbers of a pair ("M2,2H3"), so a localised decimal shows
# as three or more numbers joined by commas ("M12,5,3,4").
SVG_PATH = re.compile(r'\s(?:d|points)="([^"]*)"')
DECIMAL_COMMA = re.compile(r"\d,\d")
PATH_DECIMAL_COMMA = re.compile(r"\d+(?:\.\d+)?,\d+(?:\.\d+)?,\d")


def localized_numbers_in_markup(page: str) -> list[str]:
    found = [value for value in STYLE.findall(page) + DATA.findall(page) if DECIMAL_COMMA.search(value)]
    for svg in SVG.findall(page):
        found += [value for value in SVG_ATTRIBUTE.findall(svg) if DECIMAL_COMMA.search(value)]
        found += [value for value in SVG_PATH.findall(svg) if PATH_DECIMAL_COMMA.search(value)]
    return found


@pytest.fixture
def busy_day(lab, technician):
    """A lab's day with reservations that start and end at odd fractions of the opening hours."""
    machine = factories.MachineFactory(lab=lab)
    day = timezone.localdate() + timedelta(days=1)
    start = timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(hours=9, minutes=20)
    factories.ReservationFactory(machine=machine, start=start, end=start + timedelta(minutes=100))
    factories.ReservationFactory(machine=machine, start=start + timedelta(hours=3, minutes=10),
                                 end=start + timedelta(hours=4, minutes=5))
    return day


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_lab_days_timeline_places_blocks_with_plain_numbers(technician, lab, busy_day, language):
    client = client_for(technician)
    client.cookies["django_language"] = language
    page = client.get(f"/booking/labs/{lab.slug}/day/", {"day": busy_day.isoformat()}).content.decode()
    assert "timeline-block" in page
    assert localized_numbers_in_markup(page) == []


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_reports_bars_are_sized_with_plain_numbers(coordinator, lab, language):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab),
                                       start=timezone.now() - timedelta(days=1, hours=3),
                                       end=timezone.now() - timedelta(days=1))
    for _ in range(3):
        factories.SeatBookingFactory(session=session)
    client = client_for(coordinator)
    client.cookies["django_language"] = language
    month = timezone.localdate(session.start).strftime("%Y-%m")
    page = client.get("/reports/", {"month": month, "lab": "all"}).content.decode()
    assert "bar" in page
    assert localized_numbers_in_markup(page) == []


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_reports_svg_charts_are_drawn_with_plain_numbers(coordinator, lab, language):
    """Per-lab bars, the year's progress and a machine's hours by day, with fractions of hours everywhere."""
    from fablab_ops.machines.models import MachineUsageDay
    from fablab_ops.reports.models import YearTarget

    machine = factories.MachineFactory(lab=lab)
    month = timezone.localdate().replace(day=1) - timedelta(days=1)
    for day, hours in ((3, 2.35), (7, 1.1), (12, 6.666)):
        MachineUsageDay.objects.create(machine=machine, day=month.replace(day=day), running_seconds=hours * 3600)
    factories.ReservationFactory(machine=machine, start=timezone.make_aware(datetime.combine(
        month.replace(day=5), datetime.min.time())) + timedelta(hours=9, minutes=20),
        end=timezone.make_aware(datetime.combine(month.replace(day=5), datetime.min.time())) + timedelta(hours=11))
    YearTarget.objects.create(year=month.year, lab=lab, classes=7, participant_turns=33)
    client = client_for(coordinator)
    client.cookies["django_language"] = language
    page = client.get("/reports/", {"month": month.strftime("%Y-%m"), "lab": "all"}).content.decode()
    assert page.count('role="img"') >= 4  # two per-lab charts, the progress, the machine's days
    assert localized_numbers_in_markup(page) == []
    if language == "vi":
        assert "6,67" in page  # the figures for people keep the Vietnamese decimal comma


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_live_boards_day_timeline_is_drawn_with_plain_numbers(technician, lab, language):
    from fablab_ops.machines.models import UsageSession

    machine = factories.MachineFactory(lab=lab)
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time()))
    # A run that ended today before now, at any hour (just after midnight there is little of today behind us).
    behind = min(timezone.now() - midnight, timedelta(hours=1))
    UsageSession.objects.create(machine=machine, start=midnight + behind / 8, end=midnight + behind / 2)
    client = client_for(technician)
    client.cookies["django_language"] = language
    for address in ("/machines/live/", "/machines/live/board/"):
        page = client.get(address).content.decode()
        assert 'class="chart timeline"' in page and 'class="ran"' in page
        assert localized_numbers_in_markup(page) == []


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_each_language_is_offered_under_its_own_name(client, language):
    client.cookies["django_language"] = language
    page = client.get("/courses/").content.decode()
    options = [(code, unicodedata.normalize("NFC", name))
               for code, name in re.findall(r'<option value="(\w+)"[^>]*>([^<]*)</option>', page)]
    assert ("vi", "Tiếng Việt") in options and ("en", "English") in options


def test_the_check_tells_a_localised_number_from_svg_path_syntax():
    assert localized_numbers_in_markup('<svg><path d="M2,2H3V3H2z"/></svg>') == []  # pairs: a QR ticket
    assert localized_numbers_in_markup('<svg><path d="M12,5,3,4L1,2"/></svg>') == ["M12,5,3,4L1,2"]
    assert localized_numbers_in_markup('<svg><rect x="11,11"/></svg>') == ["11,11"]
    assert localized_numbers_in_markup('<p style="left: 11,11%">') == ["left: 11,11%"]
