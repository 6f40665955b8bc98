"""Who was entitled to run a machine, and when: asked by what the telemetry means, answered above.

The machines app knows running periods, not reservations. Whether a run was authorised
(a checked-in reservation, a technician's maintenance override) is the interlock's
decision, in booking (booking/interlock.py), which registers its answer here when the
apps are ready. With nothing registered nobody is entitled, and every run is reported.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Entitlement:
    """Someone could use the machine from `start` until `end`: a reservation's holder, or a technician."""

    start: datetime
    end: datetime | None
    user_id: int | None
    reservation_id: int | None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


Provider = Callable[[set[int], datetime, datetime], dict[int, list[Entitlement]]]
_provider: list[Provider] = []


def register(provider: Provider) -> None:
    """Called once by the app that decides (booking); a second registration replaces the first."""
    _provider[:] = [provider]


def entitled(machine_ids: set[int], since: datetime, until: datetime) -> dict[int, list[Entitlement]]:
    """The entitlements overlapping [since, until] for each machine, earliest first."""
    if not _provider or not machine_ids:
        return {}
    return _provider[0](machine_ids, since, until)
