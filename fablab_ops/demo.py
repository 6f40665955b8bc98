"""Demo data: the four labs of the Bình Dương network, their machines, a season of classes.

Everything is keyed on natural keys (slugs, emails, course + start) and drawn from a
seeded random generator, so seeding twice changes nothing.
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from dateutil.rrule import MONTHLY, SA, TH, TU, WE, rrule
from django.db import transaction
from django.utils import timezone

from fablab_ops.accounts.models import Role, User
from fablab_ops.booking.models import Certification, CertificationMethod, Reservation, ReservationStatus
from fablab_ops.courses.models import Course, CourseKind, SeatBooking, SeatStatus, Session
from fablab_ops.machines.models import Lab, Machine, MachineType, OpeningHours, UsageSession
from fablab_ops.machines.services import add_running_time
from fablab_ops.reports.models import YearTarget

DEMO_PASSWORD = "fablab-demo-2026"

LABS = [
    {
        "slug": "biic", "short_name": "BIIC",
        "name_vi": "Fablab đa ngành BIIC", "name_en": "BIIC Multi-disciplinary Fablab",
        "host": "Trung tâm Sáng kiến cộng đồng và Hỗ trợ khởi nghiệp tỉnh Bình Dương (BIIC)",
        "field": "Đa ngành — thành viên mạng lưới Fab Lab toàn cầu",
        "address": "Thành phố Thủ Dầu Một, tỉnh Bình Dương",
        "hours": [(d, time(8), time(17)) for d in range(6)],
    },
    {
        "slug": "eiu", "short_name": "EIU",
        "name_vi": "Fablab Trường Đại học Quốc tế Miền Đông", "name_en": "Eastern International University Fablab",
        "host": "Trường Đại học Quốc tế Miền Đông (EIU)",
        "field": "Tổng hợp — thành viên mạng lưới Fab Lab toàn cầu",
        "address": "Thành phố mới Bình Dương, Thành phố Thủ Dầu Một, tỉnh Bình Dương",
        "hours": [(d, time(7, 30), time(20)) for d in range(5)] + [(5, time(8), time(12))],
    },
    {
        "slug": "vsvc", "short_name": "Cơ điện VSVC",
        "name_vi": "Phòng thí nghiệm chế tạo cơ điện Bình Dương",
        "name_en": "Bình Dương Mechatronics Fabrication Lab",
        "host": "Trường Cao đẳng nghề Việt Nam – Singapore",
        "field": "Cơ điện tử",
        "address": "Thành phố Thuận An, tỉnh Bình Dương",
        "hours": [(d, time(7), time(11, 30)) for d in range(6)] + [(d, time(13), time(17)) for d in range(5)],
    },
    {
        "slug": "tdmu-bio", "short_name": "CNSH TDMU",
        "name_vi": "Phòng thí nghiệm chế tạo công nghệ sinh học ứng dụng",
        "name_en": "Applied Biotechnology Fabrication Lab",
        "host": "Trường Đại học Thủ Dầu Một",
        "field": "Công nghệ sinh học ứng dụng",
        "address": "Thành phố Thủ Dầu Một, tỉnh Bình Dương",
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
    session, _ = Session.objects.get_or_create(
        course=course, start=start,
        defaults={"end": end, "capacity": course.default_capacity, "lab": lab,
                  "place": lab.address if lab else "Google Meet"},
    )
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
        past = session.end < now
        if past:
            count = local_rng.randint(max(session.course.min_capacity - 3, 1), session.capacity)
        else:
            count = local_rng.randint(0, session.capacity)
        chosen = local_rng.sample(others, min(count, len(others)))
        # The next BIIC Arduino class is full with a waiting list, to show promotion.
        full_demo = (not past and session.course.slug == "arduino-biic"
                     and session == _next_session(sessions, "arduino-biic", now))
        if full_demo:
            # The demo learner holds a seat here, so cancelling it shows the waiting list moving.
            chosen = [demo_learner, *others[: session.capacity + 2]]
        for index, learner in enumerate(chosen):
            booked_at = session.start - timedelta(days=local_rng.randint(2, 20))
            if index < session.capacity:
                status = SeatStatus.CONFIRMED
                if past:
                    status = SeatStatus.ATTENDED if local_rng.random() < 0.85 else SeatStatus.NO_SHOW
                booking = SeatBooking.objects.create(session=session, learner=learner, status=status,
                                                     confirmed_at=booked_at)
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
            else:
                SeatBooking.objects.create(session=session, learner=learner, status=SeatStatus.WAITLISTED,
                                           waitlist_position=index - session.capacity + 1)
                Session.objects.filter(pk=session.pk).update(peak_waitlist=index - session.capacity + 1)
            SeatBooking.objects.filter(session=session, learner=learner).update(created_at=booked_at)
    upcoming_laser = _next_session(sessions, "induction-laser-biic", now)
    if upcoming_laser and not SeatBooking.objects.filter(session=upcoming_laser, learner=demo_learner).exists():
        SeatBooking.objects.create(session=upcoming_laser, learner=demo_learner, status=SeatStatus.CONFIRMED,
                                   confirmed_at=now)


def _next_session(sessions, course_slug: str, now: datetime) -> Session | None:
    upcoming = [s for s in sessions if s.course.slug == course_slug and s.start > now + timedelta(days=2)]
    return min(upcoming, key=lambda s: s.start) if upcoming else None


def _reservations(labs, learners, first: date, now: datetime) -> None:
    """Past machine time for certified learners: what the usage reports count."""
    certified = list(Certification.objects.filter(revoked_at__isnull=True).select_related("machine_type"))
    free_types = list(MachineType.objects.filter(requires_induction=False))
    rng = random.Random("reservations")
    day = first
    while _local(day, time(17)) < now:
        lab = labs[rng.choice(list(labs))]
        for start, end in lab.opening_intervals(day):
            candidates = [c.user for c in certified] + learners[1:20]
            user = rng.choice(candidates)
            allowed = {c.machine_type_id for c in certified if c.user_id == user.id} | {t.id for t in free_types}
            machine = lab.machines.filter(machine_type_id__in=allowed).order_by("slug").first()
            if machine is None:
                continue
            slot_start = start + timedelta(hours=rng.randint(0, 2))
            slot_end = min(slot_start + timedelta(minutes=machine.machine_type.min_reservation_minutes * 2), end)
            if slot_end <= slot_start or Reservation.objects.filter(machine=machine, start=slot_start).exists():
                continue
            shown = rng.random() < 0.9
            reservation = Reservation.objects.create(
                machine=machine, user=user, start=slot_start, end=slot_end,
                status=ReservationStatus.COMPLETED if shown else ReservationStatus.NO_SHOW,
                checked_in_at=slot_start + timedelta(minutes=3) if shown else None,
            )
            if shown:
                # What the machine's telemetry would have recorded: most of the booked time running.
                ran_from = slot_start + timedelta(minutes=rng.randint(3, 10))
                ran_to = slot_end - timedelta(minutes=rng.randint(0, 15))
                UsageSession.objects.create(machine=machine, start=ran_from, end=ran_to, user=user,
                                            reservation=reservation, job=f"job-{rng.randrange(10_000):04d}")
                add_running_time(machine.pk, ran_from, ran_to)
        day += timedelta(days=1)


@transaction.atomic
def seed(today: date | None = None) -> dict[str, int]:
    now = timezone.now()
    today = today or timezone.localdate()
    first, last = season_bounds(today)
    rng = random.Random(2026)
    labs = _labs()
    types = _machines(labs)
    for account in STAFF:
        user = _user(account)
        if account.lab:
            labs[account.lab].technicians.add(user)
    learners = _learners(rng)
    sessions = _sessions(labs, types, first, last)
    _bookings(sessions, learners, rng, now)
    if not Reservation.objects.exists():
        _reservations(labs, learners, first, now)
    _targets(labs, today.year)
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
