from datetime import date, datetime, timedelta

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status

from fablab_ops import policy
from fablab_ops.machines import services
from fablab_ops.machines.models import Lab, Machine
from fablab_ops.validation import InvalidInput, LocalTime, PlanDate, Slug, text

router = Router(tags=["machines"])

MAX_USAGE_PERIOD = timedelta(days=365)


class OpeningHoursOut(Schema):
    weekday: int
    opens: LocalTime
    closes: LocalTime


class LabOut(Schema):
    slug: str
    name: str
    short_name: str
    host: str
    field: str
    address: str
    opening_hours: list[OpeningHoursOut]


class MachineOut(Schema):
    lab: str
    slug: str
    name: str
    machine_type: str
    machine_type_name: str
    status: str
    requires_induction: bool


def _machine_out(machine: Machine) -> MachineOut:
    return MachineOut(
        lab=machine.lab.slug, slug=machine.slug, name=machine.name, machine_type=machine.machine_type.slug,
        machine_type_name=machine.machine_type.name, status=machine.status,
        requires_induction=machine.machine_type.requires_induction,
    )


def _lab_out(lab: Lab) -> LabOut:
    return LabOut(
        slug=lab.slug, name=lab.name, short_name=lab.short_name, host=lab.host, field=lab.field,
        address=lab.address,
        opening_hours=[OpeningHoursOut(weekday=h.weekday, opens=h.opens, closes=h.closes)
                       for h in lab.opening_hours.all()],
    )


@router.get("/labs", response=list[LabOut], auth=None, summary="The labs of the network")
def list_labs(request):
    return [_lab_out(lab) for lab in Lab.objects.filter(is_active=True).prefetch_related("opening_hours")]


@router.get("/labs/{slug}", response=LabOut, auth=None, summary="One lab with its opening hours")
def get_lab(request, slug: Slug):
    return _lab_out(get_object_or_404(Lab.objects.prefetch_related("opening_hours"), slug=slug, is_active=True))


@router.get("/", response=list[MachineOut], auth=None, summary="Machines of the network, optionally of one lab")
def list_machines(request, lab: Slug | None = None, machine_type: Slug | None = None):
    machines = Machine.objects.select_related("lab", "machine_type").exclude(status="retired")
    if lab:
        machines = machines.filter(lab__slug=lab)
    if machine_type:
        machines = machines.filter(machine_type__slug=machine_type)
    return [_machine_out(m) for m in machines]


# --- telemetry: live status, usage, maintenance ------------------------------

class LiveOut(Schema):
    lab: str
    machine: str
    name: str
    online: bool
    state: str
    power_w: float | None
    last_seen_at: datetime | None
    today_hours: float
    hours_since_maintenance: float
    maintenance_due: bool
    alerts: list[str]
    lost_messages: int


class UsageRow(Schema):
    lab: str
    machine: str
    day: date
    hours_used: float


class UsageSummary(Schema):
    date_from: date
    date_to: date
    per_day: list[UsageRow]
    per_machine: dict[str, float]
    per_lab: dict[str, float]
    booked_hours: dict[str, float]


class MaintenanceDoneIn(Schema):
    note: text(300)


def _staffed_labs(user, lab_slug: str | None):
    if lab_slug:
        lab = get_object_or_404(Lab, slug=lab_slug)
        policy.require_lab_staff(user, lab)
        return Lab.objects.filter(pk=lab.pk)
    policy.require_lab_staff(user)
    return policy.staffed_labs(user)


@router.get("/live", response=list[LiveOut], summary="Live status of machines (technicians: their labs)")
def live(request, lab: Slug | None = None):
    rows = []
    for found in _staffed_labs(request.user, lab):
        for row in services.live_board(found):
            machine = row["machine"]
            rows.append(LiveOut(
                lab=machine.lab.slug, machine=machine.slug, name=machine.name, online=row["online"],
                state=row["state"], power_w=row["power_w"], last_seen_at=row["last_seen_at"],
                today_hours=row["today_hours"], hours_since_maintenance=row["since_maintenance"],
                maintenance_due=row["maintenance_due"], alerts=[a.kind for a in row["alerts"]],
                lost_messages=row["gaps"]))
    return rows


@router.get("/usage", response=UsageSummary, summary="Hours used (telemetry) and booked per machine, lab and day")
def usage(request, date_from: PlanDate, date_to: PlanDate, lab: Slug | None = None):
    if not date_from <= date_to <= date_from + MAX_USAGE_PERIOD:
        raise InvalidInput(_("Khoảng thời gian phải từ 1 đến 366 ngày."), code="invalid_period")
    labs = _staffed_labs(request.user, lab)
    return services.usage_summary(labs, date_from, date_to)


@router.post("/{lab}/{machine}/maintenance-done", response={201: dict, 400: dict, 403: dict, 404: dict},
             summary="Record maintenance done; the running-hours counter starts again")
def maintenance_done(request, lab: Slug, machine: Slug, payload: MaintenanceDoneIn):
    found = get_object_or_404(Machine.objects.select_related("lab"), lab__slug=lab, slug=machine)
    log = services.record_maintenance(found, by=request.user, note=payload.note)
    return Status(201, {"id": log.pk, "running_hours": log.running_hours, "done_at": log.done_at})
