from datetime import datetime

from ninja import Router, Schema

from fablab_ops.booking.models import Reservation

router = Router(tags=["booking"])


class ReservationOut(Schema):
    id: int
    lab: str
    machine: str
    start: datetime
    end: datetime
    status: str


@router.get("/reservations/mine", response=list[ReservationOut], summary="My machine reservations")
def my_reservations(request):
    return [
        ReservationOut(id=r.id, lab=r.machine.lab.slug, machine=r.machine.slug, start=r.start, end=r.end,
                       status=r.status)
        for r in Reservation.objects.filter(user=request.user).select_related("machine__lab")
    ]
