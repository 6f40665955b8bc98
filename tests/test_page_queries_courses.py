"""The courses app's other pages, feeds and lists cost the same number of queries for one item as for many.

As in test_page_queries.py: each page is read with one item, more are added, and it is read again; every
relation a row shows (its course, lab, machine type, learner, trainer) is there, so a query per row would show.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.booking.models import ReservationStatus
from fablab_ops.courses.models import InductionResult, SeatStatus
from tests import factories
from tests.conftest import client_for
from tests.query_support import MANY, same_cost, seated_and_waiting


def soon(hours: int = 0):
    return timezone.now().replace(microsecond=0) + timedelta(days=3, hours=hours)


def courses(lab, n):
    """Courses as the coordinator lists them: each at a lab, an induction certifying a machine type."""
    for _ in range(n):
        factories.InductionCourseFactory(lab=lab, instructor="Phạm Văn Hướng")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/courses/courses", "/courses/manage/courses/"])
def test_the_courses(lab, coordinator, url):
    courses(lab, 1)
    same_cost(client_for(coordinator), url, lambda: courses(lab, MANY))


def lab_sessions(lab, n):
    """Sessions of a lab's feed, each of its own course, with what to bring and some learners booked."""
    for i in range(n):
        course = factories.CourseFactory(lab=lab, what_to_bring="Máy tính xách tay", description="Cơ bản")
        session = factories.SessionFactory(course=course, start=soon(i))
        factories.SeatBookingFactory(session=session)


@pytest.mark.django_db
def test_a_labs_calendar_feed(lab, learner):
    lab_sessions(lab, 1)
    same_cost(client_for(learner), f"/courses/calendar/labs/{lab.slug}.ics", lambda: lab_sessions(lab, MANY))


@pytest.mark.django_db
def test_a_courses_calendar_feed(lab, learner):
    course = factories.CourseFactory(lab=lab, what_to_bring="Máy tính xách tay")

    def add(n):
        for i in range(n):
            session = factories.SessionFactory(course=course, start=soon(i), lab=factories.LabFactory())
            factories.SeatBookingFactory(session=session)

    add(1)
    same_cost(client_for(learner), f"/courses/calendar/courses/{course.slug}.ics", lambda: add(MANY))


@pytest.mark.django_db
def test_a_learners_own_calendar_feed(learner):
    """The feed a learner's phone subscribes to (its address is the one "my bookings" shows): their seats,
    each at another lab's course, and their machine reservations."""

    def book(n):
        for i in range(n):
            lab = factories.LabFactory()
            session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), start=soon(i))
            factories.SeatBookingFactory(session=session, learner=learner)
            factories.ReservationFactory(machine=factories.MachineFactory(lab=factories.LabFactory()), user=learner,
                                         start=soon(i), end=soon(i + 1))

    book(1)
    same_cost(client_for(learner), f"/courses/calendar/{learner.feed_secret}.ics", lambda: book(MANY))


def past_inductions(lab, n):
    """Inductions held this week at the lab, each with attendees, one of them already marked."""
    for i in range(n):
        session = factories.SessionFactory(course=factories.InductionCourseFactory(lab=lab),
                                           start=timezone.now().replace(microsecond=0) - timedelta(days=2, hours=i))
        factories.SeatBookingFactory(session=session, status=SeatStatus.ATTENDED, checked_in_at=session.start)
        factories.SeatBookingFactory(session=session, status=SeatStatus.ATTENDED, checked_in_at=session.start,
                                     induction_result=InductionResult.PASSED, induction_marked_at=session.end)


@pytest.mark.django_db
def test_the_inductions_to_mark(lab, technician):
    past_inductions(lab, 1)
    same_cost(client_for(technician), "/courses/inductions/", lambda: past_inductions(lab, MANY))


@pytest.mark.django_db
def test_an_inductions_results(lab, technician):
    session = factories.SessionFactory(course=factories.InductionCourseFactory(lab=lab),
                                       start=timezone.now().replace(microsecond=0) - timedelta(days=1))

    def attend(n):
        for _ in range(n):
            factories.SeatBookingFactory(session=session, status=SeatStatus.ATTENDED, checked_in_at=session.start,
                                         checked_in_by=factories.TechnicianFactory(labs=[lab]),
                                         induction_result=InductionResult.PASSED, induction_marked_at=session.end,
                                         induction_marked_by=factories.TechnicianFactory(labs=[lab]))

    attend(1)
    same_cost(client_for(technician), f"/courses/inductions/{session.pk}/", lambda: attend(MANY))


def certifications(learner, lab, n):
    """Machine types the learner is certified for (lapsing when unused, one used lately), and as many they
    lack, each with a machine at the lab and an induction coming with a free seat."""
    for i in range(n):
        kind = factories.MachineTypeFactory(certification_lapse_days=180)
        factories.CertificationFactory(user=learner, machine_type=kind)
        factories.ReservationFactory(machine=factories.MachineFactory(lab=lab, machine_type=kind), user=learner,
                                     start=timezone.now().replace(microsecond=0) - timedelta(days=5, hours=i),
                                     end=timezone.now().replace(microsecond=0) - timedelta(days=5, hours=i - 1),
                                     status=ReservationStatus.COMPLETED, checked_in_at=timezone.now())
        lacking = factories.MachineTypeFactory(certification_lapse_days=180)
        factories.MachineFactory(lab=lab, machine_type=lacking)
        session = factories.SessionFactory(course=factories.InductionCourseFactory(lab=lab, certifies=lacking),
                                           start=soon(i))
        factories.SeatBookingFactory(session=session)


@pytest.mark.django_db
def test_my_certifications(lab, learner):
    certifications(learner, lab, 1)
    same_cost(client_for(learner), "/courses/my/certifications/", lambda: certifications(learner, lab, MANY))


@pytest.mark.django_db
def test_the_sign_in_sheet_of_a_full_class(lab, coordinator):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab, instructor="Phạm Văn Hướng"),
                                       capacity=40)
    factories.SeatBookingFactory(session=session)

    def fill():
        for _ in range(MANY):
            factories.SeatBookingFactory(session=session)
            factories.SeatBookingFactory(session=session, status=SeatStatus.CANCELLED, cancelled_at=timezone.now())

    same_cost(client_for(coordinator), "/courses/manage/sign-in.pdf", fill, {"session": [session.pk]})


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["coordinator", "technician"])
def test_the_sign_in_sheets_of_many_classes(lab, role, request):
    """One page per session asked for: the sessions are the rows, each with its learners."""
    asked = {"session": []}

    def add(n):
        for i in range(n):
            session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), start=soon(i))
            factories.SeatBookingFactory(session=session)
            factories.SeatBookingFactory(session=session)
            asked["session"].append(session.pk)

    add(1)
    # The second read asks for the sessions added too: `asked` is the same dict, grown by `add`.
    same_cost(client_for(request.getfixturevalue(role)), "/courses/manage/sign-in.pdf", lambda: add(MANY), asked)


@pytest.mark.django_db
def test_the_schedule_form(lab, coordinator):
    courses(lab, 1)
    same_cost(client_for(coordinator), "/courses/manage/schedule/",
              lambda: [courses(factories.LabFactory(), 1) for _ in range(MANY)])


@pytest.mark.django_db
def test_a_sessions_page(lab, learner):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), capacity=40)
    factories.SeatBookingFactory(session=session, learner=learner)
    same_cost(client_for(learner), f"/courses/sessions/{session.pk}/", lambda: seated_and_waiting(session, MANY))


@pytest.mark.django_db
def test_cancelling_a_session_names_who_will_be_told(lab, coordinator):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), capacity=40)
    seated_and_waiting(session, 1)
    same_cost(client_for(coordinator), f"/courses/manage/sessions/{session.pk}/cancel/",
              lambda: seated_and_waiting(session, MANY, first_place=2))
