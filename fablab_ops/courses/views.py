from django.db.models import Count, Q
from django.shortcuts import render
from django.utils import timezone

from fablab_ops.courses.models import SEAT_HOLDING, CourseKind, SeatStatus, Session
from fablab_ops.machines.models import Lab


def session_list(request):
    sessions = (
        Session.objects.filter(end__gte=timezone.now())
        .select_related("course", "lab")
        .annotate(
            held=Count("bookings", filter=Q(bookings__status__in=SEAT_HOLDING)),
            waiting=Count("bookings", filter=Q(bookings__status=SeatStatus.WAITLISTED)),
        )
    )
    lab = request.GET.get("lab")
    kind = request.GET.get("kind")
    if lab:
        sessions = sessions.filter(lab__slug=lab)
    if kind:
        sessions = sessions.filter(course__kind=kind)
    for session in sessions:
        session.seats_left = max(session.capacity - session.held, 0)
    return render(request, "courses/session_list.html", {
        "sessions": sessions[:200], "labs": Lab.objects.filter(is_active=True), "kinds": CourseKind.choices,
        "selected_lab": lab, "selected_kind": kind,
    })
