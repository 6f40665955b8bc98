"""The door over the API: check in a QR ticket or by hand, undo, today's list, refused scans.

Mounted under /api/booking/ beside the reservations router, where the door's clients have always found it.
"""

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from fablab_ops import policy
from fablab_ops.booking.models import CheckInOutcome
from fablab_ops.door import services
from fablab_ops.machines.models import Lab
from fablab_ops.validation import DbId, Slug, text

router = Router(tags=["door"])


class ErrorOut(Schema):
    code: str
    message: str


class CheckInIn(Schema):
    token: text(500) = Field(description="The text of the scanned QR code")
    lab: Slug = Field(description="Slug of the lab whose door this is")


class ManualCheckInIn(Schema):
    kind: str = Field(pattern="^(seat|reservation)$")
    id: DbId
    lab: Slug


class CheckInOut(Schema):
    outcome: str = Field(description="checked_in, already_checked_in or refused")
    code: str = Field(description="Empty when accepted; otherwise the reason: already_checked_in, wrong_lab, "
                                  "too_early, too_late, cancelled, session_cancelled, waitlisted, no_show, "
                                  "unknown_token, invalid_token")
    title: str
    message: str
    person: str
    what: str
    checked_in_at: datetime | None
    record_id: DbId


class DoorEntry(Schema):
    kind: str
    id: int
    person: str
    phone: str
    what: str
    start: datetime
    end: datetime
    status: str
    checked_in_at: datetime | None


class RefusedScanOut(Schema):
    at: datetime
    lab: str
    by: str
    reason: str
    method: str


def checkin_out(result) -> CheckInOut:
    return CheckInOut(outcome=result.outcome, code=result.reason, title=result.message, message=result.message,
                      person=result.person, what=result.what, checked_in_at=result.checked_in_at,
                      record_id=result.record_id)


@router.post("/checkin", response={200: CheckInOut, 403: ErrorOut, 404: ErrorOut, 409: CheckInOut},
             summary="Check in whoever holds a QR ticket at a lab's door (technicians of that lab, coordinators)",
             description="200 when checked in or already checked in (counted once); 409 with the reason when "
                         "refused. Every attempt is recorded.")
def check_in(request, payload: CheckInIn):
    lab = get_object_or_404(Lab, slug=payload.lab)
    result = services.check_in_token(payload.token, lab=lab, by=request.user)
    return Status(409 if result.outcome == CheckInOutcome.REFUSED else 200, checkin_out(result))


@router.post("/checkin/manual", response={200: CheckInOut, 403: ErrorOut, 404: ErrorOut, 409: CheckInOut},
             summary="Check someone in from the door list, for people without their phone")
def check_in_manually(request, payload: ManualCheckInIn):
    lab = get_object_or_404(Lab, slug=payload.lab)
    result = services.check_in_manually(payload.kind, payload.id, lab=lab, by=request.user)
    return Status(409 if result.outcome == CheckInOutcome.REFUSED else 200, checkin_out(result))


@router.post("/checkin/{record_id}/undo", response={200: dict, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
             summary="Undo a check-in made by mistake, within a few minutes")
def undo_check_in(request, record_id: DbId):
    record = services.undo_check_in(record_id, by=request.user)
    return {"record_id": record.pk, "undone_at": record.undone_at}


@router.get("/labs/{lab}/door", response={200: list[DoorEntry], 403: ErrorOut, 404: ErrorOut},
            summary="Today's list at a lab's door: who is expected and who is in; `q` searches name or phone")
def door_list(request, lab: Slug, q: text(100) = ""):
    found = get_object_or_404(Lab, slug=lab)
    listing = services.search_today(found, q, by=request.user)
    # The phone number for coordinators only; technicians at the door need the name and the booking.
    contacts = policy.sees_contact_details(request.user)
    return ([DoorEntry(kind="seat", id=s.pk, person=s.learner.full_name, phone=s.learner.phone if contacts else "",
                       what=s.session.course.title, start=s.session.start, end=s.session.end, status=s.status,
                       checked_in_at=s.checked_in_at) for s in listing["seats"]]
            + [DoorEntry(kind="reservation", id=r.pk, person=r.user.full_name,
                         phone=r.user.phone if contacts else "",
                         what=r.machine.name, start=r.start, end=r.end, status=r.status,
                         checked_in_at=r.checked_in_at) for r in listing["reservations"]])


@router.get("/checkin/refused", response={200: list[RefusedScanOut], 403: ErrorOut},
            summary="Refused scans with their reasons: what happened at the door")
def refused_scans(request, lab: Slug | None = None):
    policy.require_lab_staff(request.user)
    found = get_object_or_404(Lab, slug=lab) if lab else None
    records = services.refused_scans(by=request.user, lab=found)[:500]
    return [RefusedScanOut(at=r.at, lab=r.lab.slug, by=r.by.full_name, reason=r.reason, method=r.method)
            for r in records]
