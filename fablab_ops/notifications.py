"""Telling people what happened to them: the e-mail outbox and its relay.

`notify()` is called by services inside their transaction: it stores the message's
kind and what it is about (references to rows, never rendered text) as a
`Notification` row — the outbox entry, made idempotent by its `dedup_key` — in one
INSERT, and asks for it to be sent only after the transaction commits, so nobody is
told about a booking that was rolled back. An `Outbox` gathers a transaction's
messages and writes them in one statement. Nothing is rendered inside the business
transaction: the worker renders the e-mail (in the recipient's language) when it
first sends it and stores the text, so a resend is the same e-mail.

The relay sends what is due, never inside a database transaction:

1. claim: in one short transaction, due rows become `sending` with a lease
   (`claimed_until`) and their attempt is counted; the transaction commits;
2. send: the SMTP exchange, with the row's own Message-ID;
3. record: in another short transaction, `sent`, or `due` again after an
   exponential back-off, or `failed` after MAX_ATTEMPTS for staff to retry.

Rows are sent at once after commit (a Celery task queued by a robust on-commit
hook; in a web process a thread of its own hands them to the broker, so a request
never waits for Redis, and rows committed together travel in one task) and by a
sweep that Celery beat runs every minute for whatever was left behind: Redis down
at commit, a worker killed. A row whose lease ran out is due again: a worker killed
inside the SMTP exchange may have handed the message over, so the message can
arrive twice — the one duplicate allowed, and it carries the same Message-ID,
which mail clients use to show it once.
"""

import logging
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import models, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from fablab_ops import handoff
from fablab_ops.accounts.models import Notification, NotificationState
from fablab_ops.rows import Prepared, Writes, column_names, saved_values

logger = logging.getLogger(__name__)

# How long a claimed row belongs to its worker: longer than an SMTP exchange can take (EMAIL_TIMEOUT bounds
# each step), shorter than the broker's visibility timeout. OUTBOX_LEASE_S, five minutes by default.
LEASE = timedelta(seconds=settings.OUTBOX_LEASE_S)
MAX_ATTEMPTS = 8
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_LONGEST = timedelta(hours=6)
BATCH = 50
# How long a committed e-mail may wait in a web process for others to share its Celery task (`fablab_ops.handoff`).
EMAIL_LINGER = 0.5

# The outbox is the lowest layer: what may be sent to whom (privacy) and how a send is queued (a Celery task)
# are decided above it and registered here when the apps are ready. With nothing registered every message
# may be sent, and rows wait for the sweep.
ConsentCheck = Callable[[object, str], bool]
_consent_checks: list[ConsentCheck] = []
_queues: list[tuple[Callable[[list[int]], object], Callable[[], bool]]] = []


def register_consent_check(check: ConsentCheck) -> None:
    """`check(user, kind)` says whether an e-mail of that kind may go to that person; a second one replaces it."""
    _consent_checks[:] = [check]


def register_queue(queue: Callable[[list[int]], object], *,
                   in_background: Callable[[], bool] = lambda: False) -> None:
    """`queue(notification_ids)` asks a worker to send those rows now; a second one replaces the first.

    While `in_background()` says so, it is called from a thread of this process (`fablab_ops.handoff`) rather than
    in the committing request: for a queue that talks to a broker over the network.
    """
    _queues[:] = [(queue, in_background)]


def may_send(user, kind: str) -> bool:
    return all(check(user, kind) for check in _consent_checks)
# A sweep stops taking new batches after this, well within the Celery task time limit.
SWEEP_BUDGET_SECONDS = 240


def render(kind: str, language: str, context: dict) -> tuple[str, str]:
    """Templates live at notifications/<kind>.txt; their first line is the subject."""
    with translation.override(language or "vi"):
        text = render_to_string(f"notifications/{kind}.txt", context).strip()
    subject, _, body = text.partition("\n")
    return subject.strip(), body.strip()


def notify(user, kind: str, *, dedup_key: str, context: dict | None = None) -> tuple[Notification | None, bool]:
    """Store the message (kind and references) and queue its e-mail after commit; (notification, created).

    (None, False) when the person may not be sent this kind: an optional e-mail whose consent they
    withdrew, or anything to an erased person (the consent check privacy registers).
    """
    if not may_send(user, kind):
        return None, False
    outbox = Outbox()
    outbox.add(user, kind, dedup_key=dedup_key, context=context)
    return outbox.write()[0]


def _reference(value):
    """A context value as JSON: a row by its model and key, a moment as ISO text, plain values as they are."""
    if isinstance(value, models.Model):
        return {"$model": value._meta.label_lower, "pk": value.pk}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _resolve(value):
    """The other way: a stored reference back to the row (None when it has gone since) or the moment."""
    if isinstance(value, dict):
        if "$model" in value:
            return apps.get_model(value["$model"])._default_manager.filter(pk=value["pk"]).first()
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return date.fromisoformat(value["$date"])
    return value


class Outbox:
    """The notifications of one transaction, written at its end in one INSERT (existing dedup keys skipped)."""

    def __init__(self):
        self.rows: list[Notification] = []

    def add(self, user, kind: str, *, dedup_key: str, context: dict | None = None) -> None:
        """`user` is the recipient or their id."""
        references = {name: _reference(value) for name, value in (context or {}).items()}
        self.rows.append(Notification(user_id=getattr(user, "pk", user), kind=kind, dedup_key=dedup_key,
                                      subject="", body="", context=references))

    def write(self, *, queue: bool = True, writes: Writes | None = None) -> list[tuple[Notification, bool]] | None:
        """Insert the rows; each comes back with whether it is new (a known dedup key is left as it was).
        With `writes`, the INSERT is queued there, to travel with the transaction's last message; what became of
        each row is then settled when it is sent, and nothing is returned."""
        rows, self.rows = self.rows, []
        if not rows:
            return None if writes is not None else []
        sql, fields = _insert_statement(len(rows))
        params = [value for row in rows for value in saved_values(row, fields, adding=True)]
        if writes is not None:
            writes.add(sql, params, then=lambda inserted: _written(rows, inserted, queue))
            return None
        return _written(rows, Writes().read(sql, params), queue)


_INSERTS: dict[int, Prepared] = {}
# A seat change writes one to a few rows: those INSERTs are prepared (one statement per number of rows). A larger
# batch (a cancelled session's learners) goes as plain text, so a connection does not keep a statement per size.
PREPARED_UP_TO = 4


def _insert_statement(count: int) -> tuple[Prepared | str, list]:
    """The INSERT of `count` outbox rows."""
    fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
    if count in _INSERTS:
        return _INSERTS[count], fields
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (f'INSERT INTO "{Notification._meta.db_table}" ({column_names(fields)}) '  # noqa: S608 - model names
           f"VALUES {', '.join([row_sql] * count)} "
           f'ON CONFLICT ("dedup_key") DO NOTHING RETURNING "id", "dedup_key"')
    if count > PREPARED_UP_TO:
        return sql, fields
    _INSERTS[count] = Prepared(sql, f"outbox_insert_{count}")
    return _INSERTS[count], fields


def _written(rows: list[Notification], inserted: list[tuple], queue: bool) -> list[tuple[Notification, bool]]:
    """Each row with whether it is new, from the INSERT's (id, dedup key) pairs; the new ones are queued to be
    sent once the transaction commits."""
    new = {key: pk for pk, key in inserted}
    known = Notification.objects.in_bulk([row.dedup_key for row in rows if row.dedup_key not in new],
                                         field_name="dedup_key")
    results = []
    for row in rows:
        if row.dedup_key in new:
            row.pk = new[row.dedup_key]
            row._state.adding = False
            results.append((row, True))
        else:
            results.append((known[row.dedup_key], False))
    if queue and new:
        queue_after_commit(list(new.values()))
    return results


def render_stored(notification: Notification) -> None:
    """Render a stored notification from its kind and references, once, and keep the text with the row."""
    if notification.context is None or notification.body:
        return
    context = {name: _resolve(value) for name, value in notification.context.items()}
    subject, body = render(notification.kind, notification.user.language, {"user": notification.user, **context})
    notification.subject, notification.body = subject[:300], body
    Notification.objects.filter(pk=notification.pk).update(subject=notification.subject, body=body)


def enqueue(user, kind: str, *, dedup_key: str, subject: str, body: str,
            attachment: tuple[str, str, bytes] | None = None, queue: bool = True) -> tuple[Notification, bool]:
    """Write the outbox row (once per dedup key); with `queue`, hand it to a worker after commit.

    `attachment` is (file name, media type, content), stored with the row so a resend is the same e-mail.
    """
    name, media_type, content = attachment or ("", "", None)
    notification, created = Notification.objects.get_or_create(
        dedup_key=dedup_key,
        defaults={"user": user, "kind": kind, "subject": subject, "body": body, "attachment_name": name,
                  "attachment_type": media_type, "attachment": content},
    )
    if created and queue:
        queue_after_commit([notification.pk])
    return notification, created


def queue_after_commit(notification_ids: list[int]) -> None:
    """Queue the sends once the transaction commits; if the broker is down the sweep sends them later."""
    if not _queues:
        return
    enqueue, in_background = _queues[0]
    if in_background():
        transaction.on_commit(lambda: handoff.put(notification_ids, enqueue, linger=EMAIL_LINGER), robust=True)
    else:
        transaction.on_commit(lambda: enqueue(notification_ids), robust=True)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1, 2, 4, … minutes, at most 6 hours."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_LONGEST)


def _due(now: datetime) -> Q:
    return (Q(state=NotificationState.DUE, next_attempt_at__lte=now)
            | Q(state=NotificationState.SENDING, claimed_until__lte=now))


def claim(*, now: datetime, ids: list[int] | None = None, limit: int = BATCH) -> list[int]:
    """Take due rows for this worker for one lease; their attempt is counted now, before any SMTP."""
    with transaction.atomic():
        due = Notification.objects.filter(_due(now))
        if ids is not None:
            due = due.filter(pk__in=ids)
        picked = list(due.order_by("next_attempt_at", "pk").select_for_update(skip_locked=True)
                      .values_list("pk", flat=True)[:limit])
        if picked:
            Notification.objects.filter(pk__in=picked).update(
                state=NotificationState.SENDING, claimed_until=now + LEASE, attempts=F("attempts") + 1)
    return picked


def email_for(notification: Notification) -> EmailMessage:
    message = EmailMessage(notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL,
                           [notification.user.email], headers={"Message-ID": notification.message_id})
    if notification.attachment_name:
        message.attach(notification.attachment_name, bytes(notification.attachment or b""),
                       notification.attachment_type or "application/octet-stream")
    return message


def send_due(*, now: datetime | None = None, ids: list[int] | None = None, limit: int = BATCH) -> int:
    """Claim, send and record up to `limit` due rows (any, or those of `ids`); returns how many were sent.

    Must not be called inside a transaction: the SMTP exchange happens between two. `now` is for tests;
    by default each claim takes the time it is made, so every row's lease covers its own exchange.
    """
    sent, _claimed = _relay(now=now, ids=ids, limit=limit)
    return sent


def _relay(*, now: datetime | None, ids: list[int] | None, limit: int) -> tuple[int, int]:
    """One row at a time: claim it (one short transaction), send it, record the outcome (another)."""
    sent = claimed = 0
    while claimed < limit:
        moment = now or timezone.now()
        picked = claim(now=moment, ids=ids, limit=1)
        if not picked:
            break
        claimed += 1
        notification = Notification.objects.select_related("user").get(pk=picked[0])
        if not _may_still_send(notification):
            continue
        try:
            render_stored(notification)
            email_for(notification).send()
        except Exception as error:  # anything the mail server or the network says: retried later
            _record_failure(notification, error, moment)
        else:
            Notification.objects.filter(pk=notification.pk, state=NotificationState.SENDING).update(
                state=NotificationState.SENT, sent_at=timezone.now(), claimed_until=None, last_error="")
            sent += 1
    return sent, claimed


def _may_still_send(notification: Notification) -> bool:
    """Consent is asked again at send time: it may have been withdrawn, or the person erased, since the row was
    written (and rows written in bulk by id were never asked)."""
    if may_send(notification.user, notification.kind):
        return True
    Notification.objects.filter(pk=notification.pk, state=NotificationState.SENDING).update(
        state=NotificationState.FAILED, claimed_until=None, last_error="not sent: no consent for this e-mail")
    return False


def _record_failure(notification: Notification, error: Exception, now: datetime) -> None:
    attempts = Notification.objects.filter(pk=notification.pk).values_list("attempts", flat=True).first() or 0
    failed = attempts >= MAX_ATTEMPTS
    Notification.objects.filter(pk=notification.pk, state=NotificationState.SENDING).update(
        state=NotificationState.FAILED if failed else NotificationState.DUE,
        next_attempt_at=now + backoff(attempts), claimed_until=None,
        last_error=f"{type(error).__name__}: {error}"[:500],
    )
    log = logger.error if failed else logger.warning
    log("notification %s (%s) not sent, attempt %d: %s", notification.pk, notification.kind, attempts, error)


def sweep(*, now: datetime | None = None) -> int:
    """Send everything due, batch after batch, within the sweep's time budget (Celery beat, every minute)."""
    started = time.monotonic()
    total = 0
    while True:
        sent, claimed = _relay(now=now, ids=None, limit=BATCH)
        total += sent
        if claimed < BATCH or time.monotonic() - started > SWEEP_BUDGET_SECONDS:
            return total


def retry(notification_ids, *, now: datetime | None = None) -> int:
    """Staff send failed (or waiting) rows again now; each retry gives one more attempt."""
    now = now or timezone.now()
    with transaction.atomic():
        retried = list(Notification.objects.filter(
            pk__in=list(notification_ids), state__in=[NotificationState.FAILED, NotificationState.DUE],
        ).values_list("pk", flat=True))
        Notification.objects.filter(pk__in=retried).update(state=NotificationState.DUE, next_attempt_at=now)
        queue_after_commit(retried)
    return len(retried)


def backlog(now: datetime | None = None) -> dict[str, int]:
    """What the outbox holds: due now, being sent, failed (for staff and monitoring)."""
    now = now or timezone.now()
    return {
        "due": Notification.objects.filter(_due(now)).count(),
        "sending": Notification.objects.filter(state=NotificationState.SENDING, claimed_until__gt=now).count(),
        "failed": Notification.objects.filter(state=NotificationState.FAILED).count(),
    }
