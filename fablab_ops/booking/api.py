"""Machine reservations API: availability, reserve, cancel, the network search, certifications.

Refusals are `{"code", "message"}` with 409 and a code naming the rule:
`not_certified`, `outside_opening_hours`, `too_short`, `too_long`, `too_far_ahead`,
`no_show_penalty`, `weekly_limit_reached`, `in_maintenance`, `machine_unavailable`,
`in_the_past`, `slot_taken`.
"""

from datetime import date, datetime
from typing import Annotated

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status

from fablab_ops.accounts.models import User
from fablab_ops.booking import calendar, services, tickets
from fablab_ops.booking.models import Certification, Reservation, ReservationStatus
from fablab_ops.machines.models import Lab, MachineType
from fablab_ops.validation import DbId, PlanDate, PlanDateTime, Slug, text

router = Router(tags=["booking"])


class ErrorOut(Schema):
    code: str
    message: str


class ReservationIn(Schema):
    lab: Slug = Field(description="Lab slug")
    machine: Slug = Field(description="Machine slug within the lab")
    start: PlanDateTime
    end: PlanDateTime
    purpose: text(300) = ""


class ReservationOut(Schema):
    id: int
    lab: str
    machine: str
    machine_name: str
    start: datetime
    end: datetime
    status: str
    maintenance_conflict: bool
    ticket: str | None = Field(description="The signed QR token while the reservation is live")
    calendar_url: str


class IntervalOut(Schema):
    start: datetime
    end: datetime


class AvailabilityOut(Schema):
    lab: str
    machine: str
    date: date
    opening: list[IntervalOut]
    free: list[IntervalOut]
    busy: list[IntervalOut]


class SlotOut(Schema):
    lab: str
    lab_name: str
    machine: str
    machine_name: str
    start: datetime
    end: datetime


class CertificationOut(Schema):
    id: int
    user: str
    machine_type: str
    method: str
    granted_at: datetime
    revoked_at: datetime | None
    revoke_reason: str


class GrantIn(Schema):
    user_email: text(254)
    machine_type: Slug
    reason: text(300)


class RevokeIn(Schema):
    reason: text(300)


class MaintenanceIn(Schema):
    start: PlanDateTime
    end: PlanDateTime
    reason: text(300)


class MaintenanceOut(Schema):
    id: int
    start: datetime
    end: datetime
    reason: str
    flagged_reservations: int


class TimelineRow(Schema):
    machine: str
    machine_name: str
    status: str
    reservations: list[dict]
    maintenance: list[IntervalOut]


def reservation_out(reservation: Reservation) -> ReservationOut:
    live = reservation.status in (ReservationStatus.CONFIRMED, ReservationStatus.CHECKED_IN)
    return ReservationOut(
        id=reservation.id, lab=reservation.machine.lab.slug, machine=reservation.machine.slug,
        machine_name=reservation.machine.name, start=reservation.start, end=reservation.end,
        status=reservation.status, maintenance_conflict=reservation.maintenance_conflict,
        ticket=tickets.sign(tickets.RESERVATION, reservation.ticket_code) if live else None,
        calendar_url=f"/api/booking/reservations/{reservation.id}/calendar.ics",
    )


def certification_out(certification: Certification) -> CertificationOut:
    return CertificationOut(
        id=certification.id, user=certification.user.email, machine_type=certification.machine_type.slug,
        method=certification.method, granted_at=certification.granted_at, revoked_at=certification.revoked_at,
        revoke_reason=certification.revoke_reason,
    )


@router.get("/machines/{lab}/{machine}/availability", response={200: AvailabilityOut, 404: ErrorOut}, auth=None,
            summary="A machine's opening hours, free and busy time on a day")
def availability(request, lab: Slug, machine: Slug, day: PlanDate | None = None):
    found = services.machine_by_slug(lab, machine)
    day = day or timezone.localdate()
    now = timezone.now()
    opening = found.lab.opening_intervals(day)
    busy = [b for o_start, o_end in opening for b in services.busy_intervals(found, o_start, o_end)]
    return AvailabilityOut(
        lab=lab, machine=machine, date=day,
        opening=[IntervalOut(start=a, end=b) for a, b in opening],
        free=[IntervalOut(start=a, end=b) for a, b in services.free_intervals(found, day, now)],
        busy=[IntervalOut(start=a, end=b) for a, b in sorted(set(busy))],
    )


@router.post("/reservations", response={201: ReservationOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
             summary="Reserve a machine",
             description="403 `email_unverified` until the account's e-mail address is confirmed.")
def reserve(request, payload: ReservationIn):
    machine = services.machine_by_slug(payload.lab, payload.machine)
    reservation = services.reserve(request.user, machine, payload.start, payload.end, purpose=payload.purpose)
    return Status(201, reservation_out(reservation))


@router.get("/reservations/mine", response=list[ReservationOut], summary="My machine reservations")
def my_reservations(request, past: bool = False):
    return [reservation_out(r) for r in services.reservations_of(request.user, upcoming=not past)]


@router.get("/reservations/{reservation_id}", response={200: ReservationOut, 404: ErrorOut},
            summary="One of my reservations")
def get_reservation(request, reservation_id: DbId):
    return reservation_out(services.reservation_for(request.user, reservation_id))


@router.post("/reservations/{reservation_id}/cancel", response={200: ReservationOut, 404: ErrorOut, 409: ErrorOut},
             summary="Cancel my reservation before it starts")
def cancel(request, reservation_id: DbId):
    return reservation_out(services.cancel_reservation(reservation_id, request.user))


@router.post("/reservations/{reservation_id}/rotate-ticket", response={200: ReservationOut, 404: ErrorOut},
             summary="Issue a new QR ticket; the old one stops working")
def rotate_ticket(request, reservation_id: DbId):
    return reservation_out(services.rotate_ticket(reservation_id, request.user))


@router.get("/reservations/{reservation_id}/ticket.svg", summary="The reservation's QR ticket as SVG")
def ticket_svg(request, reservation_id: DbId):
    reservation = services.reservation_for(request.user, reservation_id)
    return HttpResponse(tickets.qr_svg(tickets.sign(tickets.RESERVATION, reservation.ticket_code)),
                        content_type="image/svg+xml")


@router.get("/reservations/{reservation_id}/calendar.ics", summary="The reservation as an .ics event")
def reservation_calendar(request, reservation_id: DbId):
    reservation = services.reservation_for(request.user, reservation_id)
    response = HttpResponse(calendar.reservation_ics(reservation), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fablab-machine-{reservation.id}.ics"'
    return response


@router.get("/search", response={200: list[SlotOut], 404: ErrorOut, 409: ErrorOut},
            summary="Next free slots of a machine type in every lab of the network")
def search(request, machine_type: Slug, minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60):
    kind = get_object_or_404(MachineType, slug=machine_type)
    return [SlotOut(lab=s.machine.lab.slug, lab_name=s.machine.lab.name, machine=s.machine.slug,
                    machine_name=s.machine.name, start=s.start, end=s.end)
            for s in services.find_free_slots(request.user, kind, minutes)]


@router.get("/certifications/mine", response=list[CertificationOut], summary="My certifications")
def my_certifications(request):
    return [certification_out(c) for c in request.user.certifications.select_related("user", "machine_type")]


@router.post("/certifications", response={201: CertificationOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
             summary="Grant a certification (technicians, coordinators)")
def grant(request, payload: GrantIn):
    services.require_staff(request.user)
    user = get_object_or_404(User, email__iexact=payload.user_email)
    kind = get_object_or_404(MachineType, slug=payload.machine_type)
    return Status(201, certification_out(services.grant_certification(user=user, machine_type=kind,
                                                                      by=request.user, reason=payload.reason)))


@router.post("/certifications/{certification_id}/revoke",
             response={200: CertificationOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
             summary="Revoke a certification with a reason (technicians, coordinators)")
def revoke(request, certification_id: DbId, payload: RevokeIn):
    return certification_out(services.revoke_certification(certification_id, by=request.user,
                                                           reason=payload.reason))


@router.get("/labs/{lab}/timeline", response={200: list[TimelineRow], 403: ErrorOut, 404: ErrorOut},
            summary="A lab's day: machines with reservations and maintenance (its technicians, coordinators)")
def timeline(request, lab: Slug, day: PlanDate | None = None):
    found = get_object_or_404(Lab, slug=lab)
    rows = services.lab_timeline(found, day or timezone.localdate(), by=request.user)
    return [TimelineRow(
        machine=row["machine"].slug, machine_name=row["machine"].name, status=row["machine"].status,
        reservations=[{"id": r.id, "user": r.user.full_name, "start": r.start, "end": r.end, "status": r.status}
                      for r in row["reservations"]],
        maintenance=[IntervalOut(start=w.start, end=w.end) for w in row["maintenance"]],
    ) for row in rows]


@router.post("/machines/{lab}/{machine}/maintenance", response={201: MaintenanceOut, 403: ErrorOut, 404: ErrorOut},
             summary="Block a machine for maintenance; reservations it hits are flagged and their holders told")
def maintenance(request, lab: Slug, machine: Slug, payload: MaintenanceIn):
    found = services.machine_by_slug(lab, machine)
    window = services.schedule_maintenance(found, payload.start, payload.end, reason=payload.reason,
                                           by=request.user)
    flagged = found.reservations.filter(maintenance_conflict=True, start__lt=window.end,
                                        end__gt=window.start).count()
    return Status(201, MaintenanceOut(id=window.id, start=window.start, end=window.end, reason=window.reason,
                                      flagged_reservations=flagged))


@router.post("/reservations/{reservation_id}/switch-off", response={200: ReservationOut, 403: ErrorOut,
                                                                    404: ErrorOut, 409: ErrorOut},
             summary="End a reservation in use and switch the machine off (technicians, coordinators)")
def switch_off(request, reservation_id: DbId):
    return reservation_out(services.switch_off(reservation_id, by=request.user))


# --- technicians' overrides of the interlock ------------------------------

class SwitchOffIn(Schema):
    reason: str = ""


class MaintenanceEnableIn(Schema):
    until: datetime = Field(description="When the machine switches itself off again")
    reason: str = ""


class OverrideOut(Schema):
    id: int
    lab: str
    machine: str
    kind: str = Field(description="off (switched off now) or maintenance (enabled for maintenance)")
    by: str
    reason: str
    start: datetime
    end: datetime | None
    ended_at: datetime | None


def override_out(override) -> OverrideOut:
    return OverrideOut(id=override.pk, lab=override.machine.lab.slug, machine=override.machine.slug,
                       kind=override.kind, by=override.by.full_name, reason=override.reason, start=override.start,
                       end=override.end, ended_at=override.ended_at)


@router.post("/machines/{lab}/{machine}/switch-off",
             response={201: OverrideOut, 403: ErrorOut, 404: ErrorOut},
             summary="Switch a machine off now, whoever holds it, until the override is ended (its lab's staff)")
def switch_machine_off(request, lab: str, machine: str, payload: SwitchOffIn | None = None):
    found = services.machine_by_slug(lab, machine)
    override = services.switch_machine_off(found, by=request.user, reason=payload.reason if payload else "")
    return Status(201, override_out(override))


@router.post("/machines/{lab}/{machine}/maintenance-enable",
             response={201: OverrideOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
             summary="Enable a machine for the technician's maintenance until a given time (its lab's staff)")
def enable_for_maintenance(request, lab: str, machine: str, payload: MaintenanceEnableIn):
    found = services.machine_by_slug(lab, machine)
    override = services.enable_for_maintenance(found, payload.until, by=request.user, reason=payload.reason)
    return Status(201, override_out(override))


@router.post("/overrides/{override_id}/end", response={200: OverrideOut, 403: ErrorOut, 404: ErrorOut},
             summary="End a technician's override; the reservations decide again")
def end_override(request, override_id: int):
    return override_out(services.end_override(override_id, by=request.user))
