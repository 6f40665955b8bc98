"""factory-boy factories for every model; tests build their world from these."""

from datetime import time, timedelta

import factory
from django.utils import timezone

from fablab_ops.accounts.models import ApiToken, Role, User
from fablab_ops.booking.models import Certification, CertificationMethod, Reservation, ReservationStatus
from fablab_ops.courses.models import Course, CourseKind, SeatBooking, SeatStatus, Session
from fablab_ops.machines.models import (
    Lab,
    Machine,
    MachineType,
    MaintenanceWindow,
    OpeningHours,
    UsageSession,
)
from fablab_ops.privacy.models import Channel, Consent, Purpose

TEST_PASSWORD = "correct-horse-battery-staple"
# What the sign-up form asks of an adult besides name, e-mail and password: a date of birth and the
# required consent (bookings and check-in).
ADULT_SIGNUP = {"date_of_birth": "1990-05-20", "consent_bookings": "on"}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"hocvien{n}@example.vn")
    full_name = factory.Sequence(lambda n: f"Nguyễn Văn Học {n}")
    phone = factory.Sequence(lambda n: f"09{n:08d}")
    role = Role.LEARNER
    # Verified, as every account was before sign-up asked for it; a test about verification says None.
    email_verified_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or TEST_PASSWORD)
        if create:
            obj.save(update_fields=["password"])


class LearnerFactory(UserFactory):
    @factory.post_generation
    def consented(obj, create, extracted, **kwargs):
        """The required consent, as sign-up records it; `consented=False` makes an account older than the question."""
        if create and extracted is not False:
            Consent.objects.create(user=obj, purpose=Purpose.BOOKINGS, granted=True, notice_version="2026-11",
                                   at=timezone.now(), channel=Channel.SIGNUP)


class TechnicianFactory(UserFactory):
    email = factory.Sequence(lambda n: f"ktv{n}@fablab.test")
    full_name = factory.Sequence(lambda n: f"Kỹ Thuật Viên {n}")
    role = Role.TECHNICIAN
    is_staff = True

    @factory.post_generation
    def labs(obj, create, extracted, **kwargs):
        if create and extracted:
            for lab in extracted:
                lab.technicians.add(obj)


class CoordinatorFactory(UserFactory):
    email = factory.Sequence(lambda n: f"dieuphoi{n}@fablab.test")
    role = Role.COORDINATOR
    is_staff = True


class AdminFactory(UserFactory):
    email = factory.Sequence(lambda n: f"admin{n}@fablab.test")
    role = Role.ADMIN
    is_staff = True
    is_superuser = True


class LabFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lab
        django_get_or_create = ["slug"]
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"lab-{n}")
    short_name = factory.Sequence(lambda n: f"Lab {n}")
    name_vi = factory.Sequence(lambda n: f"Phòng thí nghiệm chế tạo {n}")
    name_en = factory.Sequence(lambda n: f"Fabrication lab {n}")
    host = "Trường Đại học Thủ Dầu Một"
    field = "Tổng hợp"
    address = "Thủ Dầu Một, Bình Dương"

    @factory.post_generation
    def hours(obj, create, extracted, **kwargs):
        """Open every day 08:00–17:00 unless the test says otherwise."""
        if not create:
            return
        for weekday, opens, closes in extracted if extracted is not None else [
            (day, time(8), time(17)) for day in range(7)
        ]:
            OpeningHours.objects.create(lab=obj, weekday=weekday, opens=opens, closes=closes)


class OpeningHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OpeningHours

    lab = factory.SubFactory(LabFactory, hours=[])
    weekday = 0
    opens = time(8)
    closes = time(17)


class MachineTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MachineType
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"type-{n}")
    name_vi = factory.Sequence(lambda n: f"Loại máy {n}")
    name_en = factory.Sequence(lambda n: f"Machine type {n}")
    requires_induction = True


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Machine

    lab = factory.SubFactory(LabFactory)
    machine_type = factory.SubFactory(MachineTypeFactory)
    slug = factory.Sequence(lambda n: f"machine-{n:02d}")
    name = factory.Sequence(lambda n: f"Máy {n}")


class MaintenanceWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaintenanceWindow

    machine = factory.SubFactory(MachineFactory)
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=4))
    reason = "Thay ống laser"


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    kind = CourseKind.ARDUINO
    slug = factory.Sequence(lambda n: f"course-{n}")
    title_vi = factory.Sequence(lambda n: f"Lập trình Arduino ứng dụng {n}")
    title_en = factory.Sequence(lambda n: f"Applied Arduino programming {n}")
    lab = factory.SubFactory(LabFactory)
    default_capacity = 20
    min_capacity = 15
    max_capacity = 20


class InductionCourseFactory(CourseFactory):
    kind = CourseKind.INDUCTION
    title_vi = factory.Sequence(lambda n: f"Hướng dẫn sử dụng máy {n}")
    certifies = factory.SubFactory(MachineTypeFactory)
    default_capacity = 8
    min_capacity = 1
    max_capacity = 10


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    course = factory.SubFactory(CourseFactory)
    start = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0) + timedelta(days=7))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=3, minutes=30))
    capacity = factory.LazyAttribute(lambda o: o.course.default_capacity)
    lab = factory.LazyAttribute(lambda o: o.course.lab)


class SeatBookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SeatBooking

    session = factory.SubFactory(SessionFactory)
    learner = factory.SubFactory(LearnerFactory)
    status = SeatStatus.CONFIRMED
    confirmed_at = factory.LazyFunction(timezone.now)


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    machine = factory.SubFactory(MachineFactory)
    user = factory.SubFactory(LearnerFactory)
    start = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0) + timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=1))
    status = ReservationStatus.CONFIRMED


class CertificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Certification

    user = factory.SubFactory(LearnerFactory)
    machine_type = factory.SubFactory(MachineTypeFactory)
    method = CertificationMethod.MANUAL
    granted_at = factory.LazyFunction(timezone.now)


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """Use `ApiToken.issue` when the test needs the plain token."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = "integration"
    prefix = "fo_test"
    digest = factory.Sequence(lambda n: ApiToken.hash(f"token-{n}"))


class UsageSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageSession

    machine = factory.SubFactory(MachineFactory)
    start = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0) - timedelta(hours=2))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=1))
