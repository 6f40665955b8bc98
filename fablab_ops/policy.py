"""Who may do what, for which lab: the one place that decides.

Pages, API routers, admin actions and tasks ask here instead of testing roles
themselves, so a rule changes in one place. Coordinators and administrators act
for the whole network; a technician acts for the labs they staff; a learner acts
for themselves only. Certifications are a network-wide right, but only the labs
that teach a machine type (they have such a machine) may grant or revoke it.

The functions answer questions (`staffs_lab`, `may_certify`) or refuse with a
`PermissionDenied` carrying a code (`require_lab_staff`, `require_certifier`).
"""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from fablab_ops.errors import PermissionDenied
from fablab_ops.machines.models import Lab, MachineStatus, MachineType

IN_SERVICE = [status for status in MachineStatus.values if status != MachineStatus.RETIRED]


def is_network_staff(user) -> bool:
    """Coordinators and administrators: every lab of the network."""
    return bool(user.is_authenticated and user.is_active and user.is_coordinator)


def staffs_lab(user, lab: Lab | None) -> bool:
    """Whether `user` may act as staff at `lab` (any lab when `lab` is None)."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_coordinator:
        return True
    if not user.is_technician:
        return False
    if lab is None:
        return True
    return lab.technicians.filter(pk=user.pk).exists()


def require_lab_staff(user, lab: Lab | None = None) -> None:
    """Technicians act for their labs; coordinators and admins for the network."""
    if not staffs_lab(user, lab):
        raise PermissionDenied(_("Bạn không phụ trách phòng lab này."), code="not_lab_staff")


def staffed_labs(user) -> QuerySet:
    """The labs `user` acts for: all for network staff, their own for a technician, none otherwise."""
    if is_network_staff(user):
        return Lab.objects.all()
    if user.is_authenticated and user.is_active and user.is_technician:
        return Lab.objects.filter(technicians=user)
    return Lab.objects.none()


def menu_labs(user) -> QuerySet:
    """The labs whose own pages a technician's menu links to; network staff reach every lab from the machines
    overview, a learner none."""
    if is_network_staff(user):
        return Lab.objects.none()
    return staffed_labs(user)


def teaching_labs(machine_type: MachineType) -> QuerySet:
    """The labs that can induct for a machine type: they run such a machine."""
    # One filter() call: both conditions hold for the same machine.
    return Lab.objects.filter(machines__machine_type=machine_type,
                              machines__status__in=IN_SERVICE).distinct()


def may_certify(user, machine_type: MachineType) -> bool:
    """Grant or revoke a certification: network staff, or a technician of a lab that teaches the type."""
    if is_network_staff(user):
        return True
    if not (user.is_authenticated and user.is_active and user.is_technician):
        return False
    return teaching_labs(machine_type).filter(technicians=user).exists()


def require_certifier(user, machine_type: MachineType) -> None:
    if not may_certify(user, machine_type):
        raise PermissionDenied(_("Chỉ kỹ thuật viên của phòng lab dạy loại máy này mới được cấp hoặc thu hồi."),
                               code="not_certifier")


def certifiable_types(user) -> QuerySet:
    """The machine types `user` may grant or revoke."""
    if is_network_staff(user):
        return MachineType.objects.all()
    if not (user.is_authenticated and user.is_active and user.is_technician):
        return MachineType.objects.none()
    return MachineType.objects.filter(machines__lab__technicians=user, machines__status__in=IN_SERVICE).distinct()


def sees_contact_details(user) -> bool:
    """E-mail addresses and phone numbers of learners: network staff only; technicians see names."""
    return is_network_staff(user)


def may_open_admin(user) -> bool:
    """The Django admin, for those it shows something to (an administrator, or staff given model rights)."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or bool(user.get_all_permissions())


# --- courses and inductions --------------------------------------------------

def may_manage_courses(user) -> bool:
    """Create and edit courses, schedule and cancel sessions, message learners, set the year's targets:
    coordinators and administrators."""
    return is_network_staff(user)


def require_course_manager(user) -> None:
    if not may_manage_courses(user):
        raise PermissionDenied(_("Chỉ điều phối viên mới được quản lý khóa học."), code="coordinators_only")


def may_see_roster(user, session) -> bool:
    """A session's roster: network staff, and the technicians of the lab where it is held (names only)."""
    if is_network_staff(user):
        return True
    return session.lab_id is not None and staffs_lab(user, session.lab)


def may_mark_induction(user, session) -> bool:
    """Mark an induction's attendees passed or not: network staff, or a technician of the lab that ran it."""
    if session.course.certifies_id is None:
        return False
    if is_network_staff(user):
        return True
    return session.lab_id is not None and staffs_lab(user, session.lab)


def require_induction_marker(user, session) -> None:
    if not may_mark_induction(user, session):
        raise PermissionDenied(_("Chỉ kỹ thuật viên của phòng lab tổ chức buổi hướng dẫn và điều phối viên "
                                 "mới được đánh giá kết quả."), code="not_induction_trainer")


def marking_labs(user) -> QuerySet:
    """The labs whose inductions `user` may mark."""
    return staffed_labs(user)


def may_mark_inductions(user) -> bool:
    """The inductions page: network staff, and technicians of a lab (one not yet given a lab marks none)."""
    return is_network_staff(user) or marking_labs(user).exists()


def may_read_reports(user) -> bool:
    """The monthly report: network staff for the network, a technician for the labs they staff."""
    return staffed_labs(user).exists()


def may_set_targets(user) -> bool:
    return is_network_staff(user)


# --- personal data (Law 91/2025/QH15) ------------------------------------------

def may_export_for(user) -> bool:
    """A copy of a learner's whole data, made by staff (the access is logged): network staff only."""
    return is_network_staff(user)


def may_register_school_classes(user) -> bool:
    """Register a school's class of pupils on the school's written consent, and read the consent's scan:
    coordinators and administrators (they manage courses for the network)."""
    return may_manage_courses(user)


def may_erase_for(user) -> bool:
    """Erase a learner's data on their request, or a school pupil's (who has no login) on the school's or a
    parent's: network staff only, logged."""
    return is_network_staff(user)
