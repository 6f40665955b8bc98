from datetime import time

from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from fablab_ops.machines.models import Lab, Machine

router = Router(tags=["machines"])


class OpeningHoursOut(Schema):
    weekday: int
    opens: time
    closes: time


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
def get_lab(request, slug: str):
    return _lab_out(get_object_or_404(Lab.objects.prefetch_related("opening_hours"), slug=slug, is_active=True))


@router.get("/", response=list[MachineOut], auth=None, summary="Machines of the network, optionally of one lab")
def list_machines(request, lab: str | None = None, machine_type: str | None = None):
    machines = Machine.objects.select_related("lab", "machine_type").exclude(status="retired")
    if lab:
        machines = machines.filter(lab__slug=lab)
    if machine_type:
        machines = machines.filter(machine_type__slug=machine_type)
    return [_machine_out(m) for m in machines]
