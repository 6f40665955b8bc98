import uuid
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fablab_ops import policy, validation
from fablab_ops.accounts import hooks
from fablab_ops.accounts.models import User
from fablab_ops.booking import tickets
from fablab_ops.courses import calendar, services, sheets
from fablab_ops.courses.forms import (
    CancelSessionForm,
    CourseForm,
    MessageForm,
    ScheduleOneForm,
    SeriesForm,
    SessionFilterForm,
    SessionForm,
)
from fablab_ops.courses.models import Course, CourseKind, InductionResult, SeatStatus, Session
from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab


def session_list(request):
    sessions = (Session.objects.filter(end__gte=timezone.now(), course__is_published=True)
                .select_related("course", "lab").order_by("start"))
    filters = SessionFilterForm(request.GET)
    filters.is_valid()
    for name in filters.errors:
        # A filter that does not parse is left out, and the learner told so; the list still shows.
        messages.error(request, SessionFilterForm.IGNORED[name])
    wanted = filters.cleaned_data
    selected = {key: request.GET.get(key, "") if key in wanted else "" for key in ("lab", "kind", "date")}
    if wanted.get("lab"):
        sessions = sessions.filter(lab__slug=wanted["lab"])
    if wanted.get("kind"):
        sessions = sessions.filter(course__kind=wanted["kind"])
    if wanted.get("date"):
        sessions = sessions.filter(start__date__gte=wanted["date"])
    sessions = list(services.with_availability(sessions)[:200])
    for session in sessions:
        session.seats_left = max(session.capacity - session.taken, 0)
    return render(request, "courses/session_list.html", {
        "sessions": sessions, "labs": Lab.objects.filter(is_active=True), "kinds": CourseKind.choices,
        "selected": selected,
    })


def session_detail(request, session_id: int):
    session = get_object_or_404(
        services.with_availability(Session.objects.select_related("course", "lab")), pk=session_id,
        course__is_published=True,
    )
    session.seats_left = max(session.capacity - session.taken, 0)
    booking = None
    if request.user.is_authenticated:
        booking = (session.bookings.filter(learner=request.user).exclude(status=SeatStatus.CANCELLED)
                   .annotate(waiting_place=services.waiting_place()).first())
    return render(request, "courses/session_detail.html", {
        "session": session, "booking": booking,
        "offer": booking is not None and services.has_offer(booking),
    })


def _act(request, action, success_message):
    try:
        result = action()
    except DomainError as error:
        messages.error(request, error.message)
        return None
    messages.success(request, success_message(result) if callable(success_message) else success_message)
    return result


@login_required
@require_POST
def book(request, session_id: int):
    result = _act(request, lambda: services.book_seat(session_id, request.user), lambda r: (
        _("Bạn đã có chỗ trong buổi học này.") if r.booking.status == SeatStatus.CONFIRMED
        else _("Lớp đã hết chỗ: bạn đứng thứ %(n)d trong danh sách chờ.") % {"n": r.booking.waiting_place}
    ))
    if result and result.booking.status == SeatStatus.CONFIRMED:
        return redirect("courses:ticket", booking_id=result.booking.pk)
    return redirect("courses:session_detail", session_id=session_id)


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request, booking_id: int):
    """GET says what cancelling would do (or why it cannot be done); POST does it."""
    if not _owned(request, booking_id):
        raise Http404
    if request.method == "POST":
        _act(request, lambda: services.cancel_booking(booking_id, request.user), _("Đã hủy đăng ký."))
        return redirect("courses:my_bookings")
    return render(request, "courses/cancel_booking.html",
                  {"terms": services.cancellation_terms(booking_id, request.user)})


@login_required
@require_POST
def confirm(request, booking_id: int):
    if not _owned(request, booking_id):
        raise Http404
    if _act(request, lambda: services.confirm_offer(booking_id, request.user), _("Bạn đã nhận chỗ.")):
        return redirect("courses:ticket", booking_id=booking_id)
    return redirect("courses:my_bookings")


def _owned(request, booking_id: int) -> bool:
    return request.user.seat_bookings.filter(pk=booking_id).exists()


@login_required
def my_bookings(request):
    feed_url = request.build_absolute_uri(f"/courses/calendar/{request.user.feed_secret}.ics")
    return render(request, "courses/my_bookings.html", {
        "upcoming": services.bookings_of(request.user, upcoming=True),
        "past": services.bookings_of(request.user, upcoming=False)[:50],
        "feed_url": feed_url, "webcal_url": feed_url.replace("https://", "webcal://").replace("http://", "webcal://"),
    })


@login_required
def ticket(request, booking_id: int):
    try:
        booking = services.booking_for(request.user, booking_id)
    except DomainError as error:
        raise Http404 from error
    token = None
    if booking.status in (SeatStatus.CONFIRMED, SeatStatus.ATTENDED):
        token = tickets.sign(tickets.SEAT, booking.ticket_code)
    return render(request, "courses/ticket.html", {
        "booking": booking, "token": token, "qr": tickets.qr_svg(token) if token else None,
    })


@login_required
def booking_calendar(request, booking_id: int):
    try:
        booking = services.booking_for(request.user, booking_id)
    except DomainError as error:
        raise Http404 from error
    return _ics(calendar.seat_booking_ics(booking), f"fablab-{booking.pk}.ics")


def _ics(content: bytes, filename: str, *, attachment: bool = True) -> HttpResponse:
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    if attachment:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def learner_feed(request, secret: str):
    learner = User.objects.filter(feed_secret=secret, is_active=True).first()
    if learner is None:
        raise Http404
    return _ics(calendar.learner_feed(learner), "fablab.ics", attachment=False)


def lab_feed(request, slug: str):
    lab = get_object_or_404(Lab, slug=slug, is_active=True)
    sessions = Session.objects.filter(lab=lab, course__is_published=True)
    return _ics(calendar.sessions_feed(f"Fablab — {lab.short_name}", sessions), f"{slug}.ics", attachment=False)


def course_feed(request, slug: str):
    course = get_object_or_404(Course, slug=slug, is_published=True)
    return _ics(calendar.sessions_feed(f"Fablab — {course.title_vi}", course.sessions.all()), f"{slug}.ics",
                attachment=False)


# --- coordinators ----------------------------------------------------------

def _coordinator(request):
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next={request.path}")
    if not policy.may_manage_courses(request.user):
        raise PermissionDenied(_("Chỉ điều phối viên mới được lên lịch lớp học."))
    return None


def _page_error(error: DomainError):
    """A refusal a page cannot show as a message: 403 and 404 become Django's pages."""
    if error.status == 403:
        return PermissionDenied(error.message)
    if error.status == 404:
        return Http404(error.message)
    return None


@require_http_methods(["GET", "POST"])
def schedule(request):
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    form = SeriesForm(request.POST or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        arguments = {"rule": data["rule"], "first_date": data["first_date"], "start_time": data["start_time"],
                     "end_time": data["end_time"], "exception_dates": data["exception_dates"]}
        try:
            if "save" in request.POST:
                series = services.create_series(course=data["course"], by=request.user, capacity=data["capacity"],
                                                lab=data["lab"], place=data["place"], **arguments)
                messages.success(request, _("Đã lên lịch %(n)d buổi học.") % {"n": series.sessions.count()})
                return redirect("courses:manage_sessions")
            preview = services.preview_series(**arguments)
        except DomainError as error:
            form.add_error("rule" if error.code == "invalid_rule" else None, error.message)
    rule = form.cleaned_data.get("rule", "") if form.is_bound and not form.errors else ""
    return render(request, "courses/schedule.html", {"form": form, "preview": preview, "rule": rule})


def manage_sessions(request):
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    sessions = services.with_availability(
        Session.objects.filter(end__gte=timezone.now()).select_related("course", "lab", "series").order_by("start")
    )[:300]
    return render(request, "courses/manage_sessions.html", {"sessions": sessions})


@require_http_methods(["GET", "POST"])
def edit_session(request, session_id: int):
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    session = get_object_or_404(Session.objects.select_related("course", "series"), pk=session_id)
    form = SessionForm(request.POST or None, session=session)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["scope"] == "rest" and session.series_id:
                count = services.change_series_from(
                    session.series_id, timezone.localtime(session.start).date(), by=request.user,
                    start_time=data["start_time"], end_time=data["end_time"], capacity=data["capacity"],
                    place=data["place"])
                messages.success(request, _("Đã cập nhật %(n)d buổi học còn lại của chuỗi.") % {"n": count})
            else:
                services.update_session(session.pk, by=request.user, start=data["start"], end=data["end"],
                                        capacity=data["capacity"], place=data["place"])
                messages.success(request, _("Đã cập nhật buổi học."))
            return redirect("courses:manage_sessions")
        except DomainError as error:
            form.add_error(None, error.message)
    return render(request, "courses/edit_session.html", {"form": form, "session": session})


@require_http_methods(["GET", "POST"])
def schedule_one(request):
    """One session of a course, without a recurrence rule."""
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    form = ScheduleOneForm(request.POST or None, initial={"course": request.GET.get("course")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        tz = timezone.get_default_timezone()
        try:
            session = services.schedule_session(
                course=data["course"], by=request.user, start=datetime.combine(data["day"], data["start_time"], tz),
                end=datetime.combine(data["day"], data["end_time"], tz), capacity=data["capacity"],
                lab=data["lab"], place=data["place"])
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Đã lên lịch buổi học."))
            return redirect("courses:roster", session_id=session.pk)
    return render(request, "courses/schedule_one.html", {"form": form})


def course_list(request):
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    courses = Course.objects.select_related("lab", "certifies").order_by("title_vi")
    return render(request, "courses/course_list.html", {"courses": courses})


@require_http_methods(["GET", "POST"])
def course_edit(request, course_id: int | None = None):
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    course = get_object_or_404(Course, pk=course_id) if course_id else None
    form = CourseForm(request.POST or None, instance=course)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_course(by=request.user, course=course, **form.cleaned_data)
        except DomainError as error:
            form.add_error("slug" if error.code == "slug_taken" else None, error.message)
        else:
            messages.success(request, _("Đã lưu khóa học “%(title)s”.") % {"title": saved.title_vi})
            return redirect("courses:course_list")
    return render(request, "courses/course_form.html", {"form": form, "course": course})


def roster(request, session_id: int):
    """Who is booked (with attendance) and who waits, in order; contact data for coordinators only."""
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next={request.path}")
    try:
        data = services.roster(session_id, by=request.user)
    except DomainError as error:
        raise _page_error(error) or Http404 from error
    if data.shows_contacts:  # e-mail and phone on the page: the access is logged (Law 91/2025/QH15)
        # Reading contact details is recorded in the access log (fablab_ops.privacy registers how).
        hooks.call("record_roster_access", request.user, [b.learner_id for b in [*data.booked, *data.waiting]],
                   f"session {data.session.pk}")
    return render(request, "courses/roster.html", {
        "roster": data, "session": data.session, "manages": policy.may_manage_courses(request.user),
        "marks": policy.may_mark_induction(request.user, data.session),
    })


def sign_in_sheet(request):
    """The sign-in sheet as PDF: one page per session asked for (`?session=1&session=2`)."""
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next={request.path}")
    ids = [validation.parse_id(value) for value in request.GET.getlist("session")]
    if not ids or None in ids or len(ids) > 100:
        messages.error(request, _("Hãy chọn ít nhất một buổi học để in danh sách ký tên."))
        return redirect("courses:manage_sessions")
    try:
        sessions = services.sign_in_sessions(ids, by=request.user)
    except DomainError as error:
        raise _page_error(error) or Http404 from error
    response = HttpResponse(sheets.sign_in_pdf(sessions), content_type="application/pdf")
    name = f"danh-sach-ky-ten-{ids[0]}.pdf" if len(ids) == 1 else "danh-sach-ky-ten.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
def message_session(request, session_id: int):
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    try:
        data = services.roster(session_id, by=request.user)
    except DomainError as error:
        raise _page_error(error) or Http404 from error
    form = MessageForm(request.POST or None, initial={"key": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        fields = form.cleaned_data
        try:
            message, created = services.message_learners(
                session_id, by=request.user, key=fields["key"], subject=fields["subject"], body=fields["body"],
                include_waitlist=fields["include_waitlist"])
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            if created:
                messages.success(request, _("Đã gửi tin nhắn tới %(n)d học viên.") % {"n": message.recipients})
            else:
                messages.info(request, _("Tin nhắn này đã được gửi trước đó; không gửi lại."))
            return redirect("courses:roster", session_id=session_id)
    return render(request, "courses/message.html", {"form": form, "roster": data, "session": data.session})


@require_http_methods(["GET", "POST"])
def cancel_session(request, session_id: int):
    """GET says who will be told; POST with a reason cancels and tells them, the reason included."""
    if (redirect_to := _coordinator(request)) is not None:
        return redirect_to
    session = get_object_or_404(Session.objects.select_related("course", "lab"), pk=session_id)
    form = CancelSessionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.cancel_session(session.pk, by=request.user, reason=form.cleaned_data["reason"])
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Đã hủy buổi học và báo cho học viên."))
            return redirect("courses:manage_sessions")
    told = services.to_be_told(session) if session.status != "cancelled" else []
    return render(request, "courses/cancel_session.html", {
        "session": session, "form": form, "told": told,
        "booked": [b for b in told if b.status == SeatStatus.CONFIRMED],
        "waiting": [b for b in told if b.status == SeatStatus.WAITLISTED],
    })


def inductions(request):
    """The inductions this person may mark, most recent first."""
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next={request.path}")
    if not policy.may_mark_inductions(request.user):
        raise PermissionDenied(_("Chỉ kỹ thuật viên và điều phối viên mới được đánh giá buổi hướng dẫn."))
    return render(request, "courses/inductions.html",
                  {"sessions": services.inductions_to_mark(by=request.user)})


@require_http_methods(["GET", "POST"])
def induction_results(request, session_id: int):
    """The trainer marks each attendee passed or not after the induction; passing certifies."""
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next={request.path}")
    try:
        session, bookings = services.induction_attendees(session_id, by=request.user)
        if request.method == "POST":
            saved = 0
            for booking in bookings:
                verdict = request.POST.get(f"result-{booking.pk}", "")
                if verdict not in InductionResult.values:
                    continue
                note = request.POST.get(f"note-{booking.pk}", "")
                try:
                    services.mark_induction(booking.pk, passed=verdict == InductionResult.PASSED,
                                            by=request.user, note=note)
                    saved += 1
                except DomainError as error:
                    if error.status in (403, 404):
                        raise
                    messages.error(request, f"{booking.learner.full_name}: {error.message}")
            if saved:
                messages.success(request, _("Đã lưu kết quả của %(n)d học viên.") % {"n": saved})
            return redirect("courses:induction_results", session_id=session_id)
    except DomainError as error:
        raise _page_error(error) or Http404 from error
    return render(request, "courses/induction_results.html", {
        "session": session, "bookings": bookings, "started": session.start <= timezone.now(),
    })


@login_required
def my_certifications(request):
    held, missing = services.certification_overview(request.user)
    return render(request, "courses/my_certifications.html", {"held": held, "missing": missing})
