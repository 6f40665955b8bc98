from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone
from ninja import Router, Schema

from fablab_ops.courses.models import SEAT_HOLDING, SeatStatus, Session

router = Router(tags=["courses"])


class SessionOut(Schema):
    id: int
    course: str
    course_title: str
    kind: str
    lab: str | None
    start: datetime
    end: datetime
    capacity: int
    seats_left: int
    waiting: int
    status: str


@router.get("/sessions", response=list[SessionOut], auth=None, summary="Upcoming sessions across the network")
def list_sessions(request, lab: str | None = None, kind: str | None = None):
    sessions = (
        Session.objects.filter(end__gte=timezone.now())
        .select_related("course", "lab")
        .annotate(
            held=Count("bookings", filter=Q(bookings__status__in=SEAT_HOLDING)),
            waiting=Count("bookings", filter=Q(bookings__status=SeatStatus.WAITLISTED)),
        )
    )
    if lab:
        sessions = sessions.filter(lab__slug=lab)
    if kind:
        sessions = sessions.filter(course__kind=kind)
    return [
        SessionOut(
            id=s.id, course=s.course.slug, course_title=s.course.title, kind=s.course.kind,
            lab=s.lab.slug if s.lab else None, start=s.start, end=s.end, capacity=s.capacity,
            seats_left=max(s.capacity - s.held, 0), waiting=s.waiting, status=s.status,
        )
        for s in sessions[:500]
    ]
