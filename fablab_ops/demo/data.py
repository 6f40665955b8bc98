"""Demo data: the four labs of the Bình Dương network, their machines, a season of classes.

Everything is keyed on natural keys (slugs, emails, course + start) and drawn from a
seeded random generator, so seeding twice changes nothing.

What happens from now on goes through the services, so it obeys the rules: seats in
coming classes are booked with `book_seat`, machine time with `reserve` (a reservation
already running was booked the day before), and some reservations covering the moment
the demo is seeded are checked in at the door (`check_in_manually`), which makes the
interlock hand those machines to their holders. The past cannot be booked any more: it is
written as it would have ended (completed reservations with the running time the
machines reported). The e-mails those bookings caused are history: marked sent.

Addresses are made up but shaped as real ones after the 2025 reform: since 1 July 2025
the province of Bình Dương is part of Hồ Chí Minh City and its wards (phường) are
directly under the city, with no district level. "Bình Dương" stays where it is a name
(the network, a lab, the new-town area).
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from dateutil.rrule import MONTHLY, SA, TH, TU, WE, rrule
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from fablab_ops.accounts.models import Notification, NotificationState, Role, User
from fablab_ops.booking.models import Certification, CertificationMethod, Reservation, ReservationStatus
from fablab_ops.booking.services import grant_certification, reserve
from fablab_ops.courses.models import Course, CourseKind, SeatBooking, SeatStatus, Session
from fablab_ops.courses.services import book_seat
from fablab_ops.door.services import check_in_manually
from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab, Machine, MachineType, OpeningHours, UsageSession
from fablab_ops.machines.services import add_running_time
from fablab_ops.reports.models import YearTarget

DEMO_PASSWORD = "fablab-demo-2026"

LABS = [
    {
        "slug": "biic", "short_name": "BIIC",
        "name_vi": "Fablab đa ngành BIIC", "name_en": "BIIC Multi-disciplinary Fablab",
        "host": "Trung tâm Sáng kiến cộng đồng và Hỗ trợ khởi nghiệp (BIIC)",
        "field": "Đa ngành — thành viên mạng lưới Fab Lab toàn cầu",
        "address": "Số 26 đường Huỳnh Văn Nghệ, phường Thủ Dầu Một, Thành phố Hồ Chí Minh",
        # Open round the clock to certified members (staffed 8:00–17:00), as many Fab Labs are: the demo
        # has a lab where a reservation can cover "now" whatever the hour it is started at.
        "hours": [(d, time(0), time(23, 59)) for d in range(7)],
    },
    {
        "slug": "eiu", "short_name": "EIU",
        "name_vi": "Fablab Trường Đại học Quốc tế Miền Đông", "name_en": "Eastern International University Fablab",
        "host": "Trường Đại học Quốc tế Miền Đông (EIU)",
        "field": "Tổng hợp — thành viên mạng lưới Fab Lab toàn cầu",
        "address": "Đường Nam Kỳ Khởi Nghĩa, Khu đô thị mới Bình Dương, phường Bình Dương, Thành phố Hồ Chí Minh",
        "hours": [(d, time(7, 30), time(20)) for d in range(5)] + [(5, time(8), time(12))],
    },
    {
        "slug": "vsvc", "short_name": "Cơ điện VSVC",
        "name_vi": "Phòng thí nghiệm chế tạo cơ điện Bình Dương",
        "name_en": "Bình Dương Mechatronics Fabrication Lab",
        "host": "Trường Cao đẳng nghề Việt Nam – Singapore",
        "field": "Cơ điện tử",
        "address": "Số 2 Đại lộ Bình Dương, phường Thuận Giao, Thành phố Hồ Chí Minh",
        "hours": [(d, time(7), time(11, 30)) for d in range(6)] + [(d, time(13), time(17)) for d in range(5)],
    },
    {
        "slug": "tdmu-bio", "short_name": "CNSH TDMU",
        "name_vi": "Phòng thí nghiệm chế tạo công nghệ sinh học ứng dụng",
        "name_en": "Applied Biotechnology Fabrication Lab",
        "host": "Trường Đại học Thủ Dầu Một",
        "field": "Công nghệ sinh học ứng dụng",
        "address": "Số 6 đường Trần Văn Ơn, phường Phú Lợi, Thành phố Hồ Chí Minh",
        "hours": [(d, time(8), time(16, 30)) for d in range(5)],
    },
]

MACHINE_TYPES = [
    # slug, vi, en, requires induction, min/max minutes, weekly hours
    ("printer-3d", "Máy in 3D", "3D printer", True, 30, 480, 12),
    ("laser-cutter", "Máy cắt laser", "Laser cutter", True, 30, 180, 6),
    ("cnc-router", "Máy phay CNC", "CNC router", True, 60, 240, 6),
    ("vinyl-cutter", "Máy cắt decal", "Vinyl cutter", True, 30, 120, 6),
    ("electronics-bench", "Bàn điện tử", "Electronics bench", False, 30, 240, 12),
    ("pcb-mill", "Máy phay mạch in", "PCB milling machine", True, 30, 180, 6),
    ("bio-cabinet", "Tủ an toàn sinh học", "Biosafety cabinet", True, 60, 240, 8),
    ("bioprinter", "Máy in sinh học 3D", "3D bioprinter", True, 60, 240, 6),
]

# lab -> [(slug, name, type, model, interlock)]
MACHINES = {
    "biic": [
        ("laser-01", "Máy cắt laser CO2 60W", "laser-cutter", "Epilog Fusion Edge 24", True),
        ("printer-01", "Máy in 3D Prusa #1", "printer-3d", "Prusa MK4", False),
        ("printer-02", "Máy in 3D Prusa #2", "printer-3d", "Prusa MK4", False),
        ("printer-03", "Máy in 3D khổ lớn", "printer-3d", "Raise3D Pro3", False),
        ("cnc-01", "Máy phay CNC gỗ", "cnc-router", "ShopBot Desktop MAX", True),
        ("vinyl-01", "Máy cắt decal", "vinyl-cutter", "Roland CAMM-1 GS2-24", False),
        ("bench-01", "Bàn điện tử #1", "electronics-bench", "Hàn + đo Rigol", False),
    ],
    "eiu": [
        ("laser-01", "Máy cắt laser EIU", "laser-cutter", "Trotec Speedy 100", True),
        ("printer-01", "Máy in 3D Ultimaker", "printer-3d", "Ultimaker S3", False),
        ("printer-02", "Máy in 3D Bambu", "printer-3d", "Bambu Lab X1C", False),
        ("pcb-01", "Máy phay mạch in", "pcb-mill", "Roland SRM-20", True),
        ("bench-01", "Bàn điện tử", "electronics-bench", "Hàn + dao động ký", False),
    ],
    "vsvc": [
        ("cnc-01", "Máy phay CNC 3 trục", "cnc-router", "Haas Desktop Mill", True),
        ("cnc-02", "Máy phay CNC khổ lớn", "cnc-router", "CNC 1325", True),
        ("laser-01", "Máy cắt laser công nghiệp", "laser-cutter", "Bodor i3", True),
        ("printer-01", "Máy in 3D công nghiệp", "printer-3d", "Raise3D E2", False),
        ("bench-01", "Bàn thực hành cơ điện tử", "electronics-bench", "PLC + cảm biến", False),
    ],
    "tdmu-bio": [
        ("bsc-01", "Tủ an toàn sinh học cấp II", "bio-cabinet", "Esco Airstream", True),
        ("bioprinter-01", "Máy in sinh học", "bioprinter", "CELLINK BIO X", True),
        ("printer-01", "Máy in 3D phòng sinh học", "printer-3d", "Prusa MK4", False),
        ("bench-01", "Bàn điện tử cảm biến sinh học", "electronics-bench", "Arduino + cảm biến", False),
    ],
}

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
          "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Hoàng", "Thanh", "Gia", "Quốc", "Bảo", "Khánh", "Phương", "Đức"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hòa", "Hùng", "Khoa", "Lan",
         "Linh", "Long", "Mai", "Nam", "Ngân", "Nhi", "Phúc", "Quân", "Quỳnh", "Sơn", "Tâm", "Thảo", "Thắng",
         "Trang", "Trí", "Trung", "Tú", "Tuấn", "Uyên", "Vy", "Yến"]

LEARNER_COUNT = 80


@dataclass(frozen=True)
class StaffAccount:
    email: str
    full_name: str
    role: str
    lab: str | None = None


STAFF = [
    StaffAccount("admin@fablab.local", "Quản trị hệ thống", Role.ADMIN),
    StaffAccount("dieuphoi@fablab.local", "Trần Thị Thu Hà", Role.COORDINATOR),
    StaffAccount("ktv.biic@fablab.local", "Nguyễn Văn Phong", Role.TECHNICIAN, "biic"),
    StaffAccount("ktv.eiu@fablab.local", "Lê Minh Tuấn", Role.TECHNICIAN, "eiu"),
    StaffAccount("ktv.vsvc@fablab.local", "Phạm Quốc Bảo", Role.TECHNICIAN, "vsvc"),
    StaffAccount("ktv.tdmu@fablab.local", "Võ Thị Ngọc Lan", Role.TECHNICIAN, "tdmu-bio"),
]
DEMO_LEARNER = StaffAccount("hocvien@fablab.local", "Nguyễn Hoàng Minh Anh", Role.LEARNER)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, timezone.get_default_timezone())


def season_bounds(today: date) -> tuple[date, date]:
    """Three months back and three ahead of the current month: past classes to report on, future to book."""
    first = today.replace(day=1)
    return first - relativedelta(months=3), first + relativedelta(months=4) - timedelta(days=1)


def _user(account: StaffAccount) -> User:
    user, created = User.objects.get_or_create(
        email=account.email,
        defaults={"full_name": account.full_name, "role": account.role, "email_verified_at": timezone.now(),
                  "is_staff": account.role in (Role.ADMIN, Role.COORDINATOR, Role.TECHNICIAN),
                  "is_superuser": account.role == Role.ADMIN},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _labs() -> dict[str, Lab]:
    labs = {}
    for spec in LABS:
        fields = {k: v for k, v in spec.items() if k not in ("slug", "hours")}
        lab, _ = Lab.objects.update_or_create(slug=spec["slug"], defaults=fields)
        for weekday, opens, closes in spec["hours"]:
            OpeningHours.objects.update_or_create(lab=lab, weekday=weekday, opens=opens,
                                                  defaults={"closes": closes})
        labs[lab.slug] = lab
    return labs


def _machines(labs) -> dict[str, MachineType]:
    types = {}
    for slug, vi, en, induction, min_minutes, max_minutes, weekly in MACHINE_TYPES:
        types[slug], _ = MachineType.objects.update_or_create(slug=slug, defaults={
            "name_vi": vi, "name_en": en, "requires_induction": induction,
            "min_reservation_minutes": min_minutes, "max_reservation_minutes": max_minutes,
            "weekly_hours_limit": weekly, "certification_lapse_days": 365 if induction else None,
        })
    for lab_slug, machines in MACHINES.items():
        for slug, name, type_slug, model_name, interlock in machines:
            Machine.objects.update_or_create(lab=labs[lab_slug], slug=slug, defaults={
                "name": name, "machine_type": types[type_slug], "model_name": model_name,
                "has_interlock": interlock,
                "maintenance_interval_hours": 100 if type_slug in ("laser-cutter", "cnc-router") else 300,
            })
    return types


def _learners(rng: random.Random) -> list[User]:
    learners = [_user(DEMO_LEARNER)]
    for n in range(1, LEARNER_COUNT + 1):
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        phone = f"09{rng.randrange(10**8):08d}"
        user, created = User.objects.get_or_create(
            email=f"hocvien{n:03d}@example.vn",
            defaults={"full_name": name, "phone": phone, "email_verified_at": timezone.now()},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        learners.append(user)
    _consented(learners)
    return learners


def _consented(learners) -> None:
    """The demo's learners signed up as today's sign-up asks: the required consent, recorded once."""
    from fablab_ops.privacy.models import Channel, Consent, Purpose
    from fablab_ops.privacy.services import record_consent

    answered = set(Consent.objects.filter(user__in=learners, purpose=Purpose.BOOKINGS).values_list("user_id",
                                                                                                    flat=True))
    for user in learners:
        if user.pk not in answered:
            record_consent(user, Purpose.BOOKINGS, True, channel=Channel.SIGNUP)


def _courses(labs, types) -> list[tuple[Course, rrule, time, time]]:
    """Each course with the recurrence of its sittings and their local hours."""
    def course(slug, kind, title_vi, title_en, lab, **extra):
        obj, _ = Course.objects.update_or_create(slug=slug, defaults={
            "kind": kind, "title_vi": title_vi, "title_en": title_en, "lab": lab, **extra})
        return obj

    arduino_range = {"default_capacity": 20, "min_capacity": 15, "max_capacity": 20, "min_learners": 8}
    induction_range = {"default_capacity": 8, "min_capacity": 4, "max_capacity": 10}
    plan = [
        (course("arduino-biic", CourseKind.ARDUINO, "Lập trình Arduino ứng dụng — lý thuyết và thực hành",
                "Applied Arduino programming — theory and practice", labs["biic"], **arduino_range),
         {"freq": MONTHLY, "byweekday": SA, "bysetpos": [2, 4]}, time(8), time(11, 30)),
        (course("arduino-eiu", CourseKind.ARDUINO, "Lập trình Arduino ứng dụng (EIU)",
                "Applied Arduino programming (EIU)", labs["eiu"], **arduino_range),
         {"freq": MONTHLY, "byweekday": WE, "bysetpos": [1, 3]}, time(17, 30), time(19, 30)),
        (course("induction-laser-biic", CourseKind.INDUCTION, "Hướng dẫn sử dụng máy cắt laser",
                "Laser cutter induction", labs["biic"], certifies=types["laser-cutter"], **induction_range),
         {"freq": MONTHLY, "byweekday": TU, "bysetpos": [1]}, time(14), time(16)),
        (course("induction-printer-eiu", CourseKind.INDUCTION, "Hướng dẫn sử dụng máy in 3D",
                "3D printer induction", labs["eiu"], certifies=types["printer-3d"], **induction_range),
         {"freq": MONTHLY, "byweekday": TH, "bysetpos": [2]}, time(14), time(16)),
        (course("induction-cnc-vsvc", CourseKind.INDUCTION, "Hướng dẫn sử dụng máy phay CNC",
                "CNC router induction", labs["vsvc"], certifies=types["cnc-router"], **induction_range),
         {"freq": MONTHLY, "byweekday": SA, "bysetpos": [3]}, time(8), time(11)),
        (course("induction-bio-tdmu", CourseKind.INDUCTION, "Hướng dẫn sử dụng tủ an toàn sinh học",
                "Biosafety cabinet induction", labs["tdmu-bio"], certifies=types["bio-cabinet"],
                **induction_range),
         {"freq": MONTHLY, "byweekday": WE, "bysetpos": [4]}, time(9), time(11)),
    ]
    return plan


def _summer_course(labs) -> Course:
    course, _ = Course.objects.update_or_create(slug="summer-creative", defaults={
        "kind": CourseKind.SUMMER, "title_vi": "Chương trình sáng tạo mùa hè: robot và thiết bị thông minh",
        "title_en": "Summer creative programme: robotics and smart devices", "lab": labs["biic"],
        "default_capacity": 25, "min_capacity": 10, "max_capacity": 30,
    })
    return course


def _session(course: Course, start: datetime, end: datetime, lab: Lab | None) -> Session:
    place = lab.address if lab else "Google Meet"
    session, _ = Session.objects.get_or_create(
        course=course, start=start,
        defaults={"end": end, "capacity": course.default_capacity, "lab": lab, "place": place},
    )
    if session.place != place and lab is not None:  # a lab's address written before it had a street
        Session.objects.filter(pk=session.pk).update(place=place)
        session.place = place
    return session


def _sessions(labs, types, first: date, last: date) -> list[Session]:
    sessions = []
    for course, rule, begins, ends in _courses(labs, types):
        for day in rrule(dtstart=datetime.combine(first, time()), until=datetime.combine(last, time()), **rule):
            sessions.append(_session(course, _local(day.date(), begins), _local(day.date(), ends), course.lab))
    # The summer programme: weekday mornings in the first two weeks of July, the
    # last week online (as the plan allows when an epidemic requires it).
    summer = _summer_course(labs)
    year = first.year if first.month <= 7 else first.year + 1
    for day in rrule(freq=MONTHLY, dtstart=datetime(year, 7, 1), count=1):
        for offset in range(14):
            sitting = day.date() + timedelta(days=offset)
            if sitting.weekday() < 5:
                lab = labs["biic"] if offset < 7 else None
                sessions.append(_session(summer, _local(sitting, time(8)), _local(sitting, time(11)), lab))
    return sessions


def _bookings(sessions, learners, rng: random.Random, now: datetime) -> None:
    demo_learner = learners[0]
    others = learners[1:]
    for session in sessions:
        if session.bookings.exists():
            continue  # already seeded (or booked for real): leave it as it is
        local_rng = random.Random(f"{session.course.slug}-{session.start.isoformat()}")
        if session.end < now:
            _past_bookings(session, others, local_rng)
            continue
        if session.start <= now:
            continue  # going on now: its bookings were made before, nothing to add by hand
        # Coming classes fill up as they come closer: those of the next two weeks hold at least their minimum.
        low = max(session.course.min_learners, session.capacity // 2) if session.start < now + timedelta(days=14) else 0
        chosen = local_rng.sample(others, min(local_rng.randint(low, session.capacity), len(others)))
        if session.course.slug == "arduino-biic" and session == _next_session(sessions, "arduino-biic", now):
            # Full with a waiting list, to show promotion: the demo learner holds a seat, so cancelling it
            # shows the waiting list moving.
            chosen = [demo_learner, *others[: session.capacity + 2]]
        for learner in chosen:
            result = book_seat(session.pk, learner, now=now)  # a seat, or a place on the waiting list when full
            booked_at = min(now, session.start - timedelta(days=local_rng.randint(2, 20)))
            SeatBooking.objects.filter(pk=result.booking.pk).update(created_at=booked_at)
    upcoming_laser = _next_session(sessions, "induction-laser-biic", now)
    if upcoming_laser:
        book_seat(upcoming_laser.pk, demo_learner, now=now)


def _past_bookings(session: Session, learners, local_rng: random.Random) -> None:
    """A class that is over: who came, who did not, and who passed an induction (as the trainer marked it)."""
    count = local_rng.randint(max(session.course.min_capacity - 3, 1), session.capacity)
    for learner in local_rng.sample(learners, min(count, len(learners))):
        booked_at = session.start - timedelta(days=local_rng.randint(2, 20))
        status = SeatStatus.ATTENDED if local_rng.random() < 0.85 else SeatStatus.NO_SHOW
        booking = SeatBooking.objects.create(session=session, learner=learner, status=status, confirmed_at=booked_at)
        if status == SeatStatus.ATTENDED:
            booking.checked_in_at = session.start - timedelta(minutes=local_rng.randint(0, 20))
            booking.save(update_fields=["checked_in_at"])
            if session.course.certifies_id:
                # The trainer marked them passed after the induction: that is what certifies.
                SeatBooking.objects.filter(pk=booking.pk).update(induction_result="passed",
                                                                 induction_marked_at=session.end)
                Certification.objects.get_or_create(
                    user=learner, machine_type_id=session.course.certifies_id, revoked_at=None,
                    defaults={"method": CertificationMethod.INDUCTION, "granted_at": session.end,
                              "seat_booking": booking},
                )
        SeatBooking.objects.filter(pk=booking.pk).update(created_at=booked_at)


def _next_session(sessions, course_slug: str, now: datetime) -> Session | None:
    upcoming = [s for s in sessions if s.course.slug == course_slug and s.start > now + timedelta(days=2)]
    return min(upcoming, key=lambda s: s.start) if upcoming else None


# Machine types the demo has no induction class for: their lab's technician certified a few learners who
# showed they could use the machine (as `grant_certification` records it), at the start of the season.
CERTIFIED_BY_TECHNICIAN = {"vinyl-cutter": "biic", "pcb-mill": "eiu", "bioprinter": "tdmu-bio"}
STAFFED = (time(8), time(17))  # when learners come: reservations of the past and the coming days
RESERVED_SHARE = 0.4  # the share of (machine, open day) pairs with a reservation


def _certify_by_technicians(labs, types, learners, first: date) -> None:
    rng = random.Random("certified-by-technicians")
    for type_slug, lab_slug in CERTIFIED_BY_TECHNICIAN.items():
        technician = labs[lab_slug].technicians.order_by("pk").first()
        for learner in rng.sample(learners[1:], 8):
            grant_certification(user=learner, machine_type=types[type_slug], by=technician,
                                reason="Đã sử dụng thành thạo ở nơi làm việc", now=_local(first, time(9)))


class _Planner:
    """Picks who reserves which machine when, keeping the rules a reservation must obey: the holder certified
    for the type (before the day), opening hours, one reservation per machine at a time, weekly hours."""

    def __init__(self, learners, rng: random.Random):
        self.rng = rng
        self.learners = learners
        self.certified: dict[int, list[tuple[User, datetime]]] = {}
        for c in Certification.objects.filter(revoked_at__isnull=True).select_related("user").order_by("pk"):
            self.certified.setdefault(c.machine_type_id, []).append((c.user, c.granted_at))
        self.hours: dict[int, list] = {}
        self.weekly: dict[tuple, float] = {}

    def intervals(self, lab: Lab, day: date) -> list[tuple[datetime, datetime]]:
        if lab.pk not in self.hours:
            self.hours[lab.pk] = list(lab.opening_hours.all())
        tz = timezone.get_default_timezone()
        return [(datetime.combine(day, h.opens, tz), datetime.combine(day, h.closes, tz))
                for h in self.hours[lab.pk] if h.weekday == day.weekday()]

    def holder(self, machine: Machine, since: datetime, start: datetime, minutes: int) -> User | None:
        machine_type = machine.machine_type
        if machine_type.requires_induction:
            candidates = [user for user, granted in self.certified.get(machine_type.pk, []) if granted < since]
        else:
            candidates = self.learners[1:]
        week = start.isocalendar()[:2]
        candidates = [u for u in candidates
                      if self.weekly.get((u.pk, machine_type.pk, week), 0) + minutes
                      <= machine_type.weekly_hours_limit * 60]
        if not candidates:
            return None
        user = self.rng.choice(candidates)
        self.weekly[user.pk, machine_type.pk, week] = self.weekly.get((user.pk, machine_type.pk, week), 0) + minutes
        return user

    def slot(self, machine: Machine, day: date, earliest: datetime | None = None) -> tuple[datetime, datetime] | None:
        """A slot on `day` within the lab's hours and the staffed day, of a length the type allows."""
        machine_type = machine.machine_type
        step = 30
        lengths = range(machine_type.min_reservation_minutes, min(machine_type.max_reservation_minutes, 180) + 1, step)
        minutes = self.rng.choice(list(lengths))
        for opens, closes in self.intervals(machine.lab, day):
            begin = max(opens, _local(day, STAFFED[0]), earliest or opens)
            end_by = min(closes, _local(day, STAFFED[1]))
            begin = begin + timedelta(minutes=(-begin.minute) % step, seconds=-begin.second,
                                      microseconds=-begin.microsecond)
            choices = int((end_by - begin - timedelta(minutes=minutes)).total_seconds() // (step * 60))
            if choices >= 0:
                start = begin + timedelta(minutes=step * self.rng.randint(0, choices))
                return start, start + timedelta(minutes=minutes)
        return None


def _machines_in_service():
    return list(Machine.objects.filter(status="available").select_related("lab", "machine_type")
                .order_by("lab__slug", "slug"))


def _past_reservations(planner: _Planner, first: date, today: date) -> None:
    """Machine time already used, on every machine: what the usage reports count.

    The past cannot be booked through `reserve` any more; it is written as it ended, with what each
    machine's telemetry recorded: most of the booked time running.
    """
    rng = planner.rng
    machines = _machines_in_service()
    day = first
    while day < today:
        for machine in machines:
            if rng.random() > RESERVED_SHARE:
                continue
            slot = planner.slot(machine, day)
            if slot is None:
                continue
            start, end = slot
            user = planner.holder(machine, start, start, int((end - start).total_seconds() // 60))
            if user is None:
                continue
            shown = rng.random() < 0.9
            reservation = Reservation.objects.create(
                machine=machine, user=user, start=start, end=end,
                status=ReservationStatus.COMPLETED if shown else ReservationStatus.NO_SHOW,
                checked_in_at=start + timedelta(minutes=3) if shown else None,
            )
            Reservation.objects.filter(pk=reservation.pk).update(created_at=start - timedelta(days=rng.randint(1, 7)))
            if shown:
                ran_from = start + timedelta(minutes=rng.randint(3, 10))
                ran_to = end - timedelta(minutes=rng.randint(0, 15))
                UsageSession.objects.create(machine=machine, start=ran_from, end=ran_to, user=user,
                                            reservation=reservation, job=f"job-{rng.randrange(10_000):04d}")
                add_running_time(machine.pk, ran_from, ran_to)
        day += timedelta(days=1)


def _reservations_now(planner: _Planner, now: datetime) -> list[Reservation]:
    """In each lab open now, a few machines reserved (the day before) around this moment and checked in at the
    door: the interlock hands them to their holders, and the demo's machines run for them."""
    rng = planner.rng
    checked_in = []
    by_lab: dict[int, list[Machine]] = {}
    for machine in _machines_in_service():
        by_lab.setdefault(machine.lab_id, []).append(machine)
    for machines in by_lab.values():
        lab = machines[0].lab
        interval = next(((o, c) for o, c in planner.intervals(lab, timezone.localtime(now).date()) if o <= now < c),
                        None)
        if interval is None:
            continue  # closed now: nobody is at its machines
        technician = lab.technicians.order_by("pk").first()
        # Machines with an interlock first: the live board shows a contactor closing for its holder.
        picks = sorted(machines, key=lambda m: (not m.has_interlock, rng.random()))[:3]
        for machine in picks:
            start = max(interval[0], now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0)
                        - timedelta(minutes=30))
            longest = min(machine.machine_type.max_reservation_minutes, 180)
            end = min(start + timedelta(minutes=longest), interval[1])
            minutes = int((end - start).total_seconds() // 60)
            if end - now < timedelta(minutes=20) or minutes < machine.machine_type.min_reservation_minutes:
                continue
            user = planner.holder(machine, start - timedelta(days=1), start, minutes)
            if user is None:
                continue
            try:
                reservation = reserve(user, machine, start, end, purpose="Dự án cá nhân",
                                      now=start - timedelta(days=1))
            except DomainError:
                continue
            check_in_manually("reservation", reservation.pk, lab=lab, by=technician,
                              now=max(start, now - timedelta(minutes=20)))
            checked_in.append(reservation)
    return checked_in


def _reservations_ahead(planner: _Planner, now: datetime, today: date, days: int = 7) -> None:
    """The coming lab days: machine time booked now, through the service, as learners book it."""
    rng = planner.rng
    machines = _machines_in_service()
    for offset in range(days + 1):
        day = today + timedelta(days=offset)
        for machine in machines:
            if rng.random() > RESERVED_SHARE:
                continue
            slot = planner.slot(machine, day, earliest=now + timedelta(hours=1))
            if slot is None:
                continue
            start, end = slot
            user = planner.holder(machine, now, start, int((end - start).total_seconds() // 60))
            if user is None:
                continue
            try:
                reserve(user, machine, start, end, now=now)
            except DomainError:
                continue  # a rule the planner does not model (a maintenance window, a penalty): not booked


def _while_away(now: datetime) -> None:
    """Reservations whose time came while the demo was stopped, written as they went: most learners came and
    used the machine, a few did not (had the demo run, the no-show job would have released those and e-mailed
    them; a restart must not send that backlog at once). One going on now is checked in at the door."""
    rng = random.Random(f"while-away-{now:%Y%m%d%H}")
    for reservation in (Reservation.objects.filter(status=ReservationStatus.CONFIRMED, start__lte=now)
                        .select_related("machine__lab").order_by("start")):
        if reservation.end > now:
            technician = reservation.machine.lab.technicians.order_by("pk").first()
            check_in_manually("reservation", reservation.pk, lab=reservation.machine.lab, by=technician, now=now)
            continue
        if rng.random() < 0.1:
            Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.NO_SHOW)
            continue
        Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.COMPLETED,
                                                             checked_in_at=reservation.start + timedelta(minutes=3))
        ran_from = reservation.start + timedelta(minutes=rng.randint(3, 10))
        ran_to = reservation.end - timedelta(minutes=rng.randint(0, 15))
        UsageSession.objects.create(machine=reservation.machine, start=ran_from, end=ran_to,
                                    user_id=reservation.user_id, reservation=reservation,
                                    job=f"job-{rng.randrange(10_000):04d}")
        add_running_time(reservation.machine_id, ran_from, ran_to)


def _reservations(labs, types, learners, first: date, today: date, now: datetime) -> None:
    _certify_by_technicians(labs, types, learners, first)
    planner = _Planner(learners, random.Random("reservations"))
    _past_reservations(planner, first, today)
    _reservations_now(planner, now)
    _reservations_ahead(planner, now, today)


def _history_sent(since_pk: int, now: datetime) -> None:
    """The e-mails the seeded bookings caused went out when they were made: none is sent again by the demo."""
    Notification.objects.filter(pk__gt=since_pk, state=NotificationState.DUE).update(
        state=NotificationState.SENT, sent_at=now)


@transaction.atomic
def seed(today: date | None = None, now: datetime | None = None) -> dict[str, int]:
    """Seed the demo as of `now` (default: this moment): the past before it, reservations covering it, the
    coming days after it."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    first, last = season_bounds(today)
    rng = random.Random(2026)
    labs = _labs()
    types = _machines(labs)
    for account in STAFF:
        user = _user(account)
        if account.lab:
            labs[account.lab].technicians.add(user)
    learners = _learners(rng)
    last_notification = Notification.objects.aggregate(last=Max("pk"))["last"] or 0
    sessions = _sessions(labs, types, first, last)
    _bookings(sessions, learners, rng, now)
    if not Reservation.objects.exists():
        _reservations(labs, types, learners, first, today, now)
    else:
        # The demo started again another day: its past stays as it is, but "now" and the coming days are new.
        _while_away(now)
        planner = _Planner(learners, random.Random(f"reservations-{now:%Y%m%d%H}"))
        if not Reservation.objects.filter(status=ReservationStatus.CHECKED_IN, start__lte=now, end__gt=now).exists():
            _reservations_now(planner, now)
        if not Reservation.objects.filter(start__gt=now).exists():
            _reservations_ahead(planner, now, today)
    _targets(labs, today.year)
    _history_sent(last_notification, now)
    return counts()


def _targets(labs, year: int) -> None:
    """The plan's figures: two classes a month per lab, 400 participant-turns for the network."""
    for lab in labs.values():
        YearTarget.objects.update_or_create(year=year, lab=lab, defaults={"classes": 24, "participant_turns": 100})
    YearTarget.objects.update_or_create(year=year, lab=None, defaults={"classes": 96, "participant_turns": 400})


def counts() -> dict[str, int]:
    models = [Lab, OpeningHours, MachineType, Machine, User, Course, Session, SeatBooking, Reservation,
              Certification, UsageSession, YearTarget]
    return {model._meta.model_name: model.objects.count() for model in models}
