"""Machine time is scarce: fifty learners clicking the same slot, one of them gets it."""

import threading
from collections import Counter
from datetime import datetime, time, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from fablab_ops.booking.models import Reservation, ReservationStatus
from tests import factories
from tests.conftest import client_for

RACERS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_learners_racing_for_one_slot_one_wins_the_rest_get_409(postgres, lab):
    laser = factories.MachineFactory(lab=lab, machine_type=factories.MachineTypeFactory(slug="laser-cutter"))
    learners = [factories.LearnerFactory() for _ in range(RACERS)]
    for learner in learners:
        factories.CertificationFactory(user=learner, machine_type=laser.machine_type)
    start = datetime.combine(timezone.localdate() + timedelta(days=1), time(10), timezone.get_default_timezone())
    payload = {"lab": lab.slug, "machine": laser.slug, "start": start.isoformat(),
               "end": (start + timedelta(hours=1)).isoformat()}
    barrier = threading.Barrier(RACERS)
    answers = []

    def run(learner):
        client = client_for(learner)
        try:
            barrier.wait()
            response = client.post("/api/booking/reservations", payload, content_type="application/json")
            answers.append((response.status_code, response.json().get("code")))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(learner,)) for learner in learners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == RACERS
    assert Counter(answers) == Counter({(201, None): 1, (409, "slot_taken"): RACERS - 1})
    assert Reservation.objects.filter(machine=laser, status=ReservationStatus.CONFIRMED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_itself_refuses_overlapping_reservations(postgres, lab):
    machine = factories.MachineFactory(lab=lab)
    start = timezone.now() + timedelta(days=1)
    factories.ReservationFactory(machine=machine, start=start, end=start + timedelta(hours=1))
    with pytest.raises(IntegrityError, match="reservation_no_overlap"), transaction.atomic():
        factories.ReservationFactory(machine=machine, start=start + timedelta(minutes=30),
                                     end=start + timedelta(hours=2))
    # Touching is not overlapping; a cancelled reservation blocks nothing.
    factories.ReservationFactory(machine=machine, start=start + timedelta(hours=1), end=start + timedelta(hours=2))
    factories.ReservationFactory(machine=machine, start=start, end=start + timedelta(hours=1),
                                 status=ReservationStatus.CANCELLED)
