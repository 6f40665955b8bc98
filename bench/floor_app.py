"""For `bench/floor.py` only: the app with one more URL, a booking written by hand with none of the rules.

`floor_book` sends what any booking must: the token and its user (one statement), the session locked with its
seat count, the learner's live booking and the next booking's key (one message), the booking's row and its
e-mail's outbox row with the COMMIT (one message), each statement prepared once per connection as the
product's are. No course, publication, consent, start or waiting-list
rule; no ORM, no schema: a floor, not a feature. Served only by the bench's gunicorn (its settings,
bench/floor_settings.py, name this module as the URLconf), never by the product.
"""

import secrets

from django.http import JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from fablab_ops.accounts.models import ApiToken
from fablab_ops.rows import Prepared, Writes
from fablab_ops.urls import urlpatterns as product_urls

# Prepared once per connection, as the product's statements on this path are (`rows.Prepared`): a floor that
# had PostgreSQL plan every statement afresh would cost more than the product itself.
TOKEN_USER = Prepared("SELECT u.id FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id "
                      "WHERE t.digest = %s AND t.revoked_at IS NULL", "floor_token_user")
LOCK = Prepared("SELECT capacity FROM courses_session WHERE id = %(session)s FOR UPDATE", "floor_lock")
COUNT = Prepared("SELECT count(*) FILTER (WHERE status = 'confirmed'), "
                 "max(id) FILTER (WHERE learner_id = %(learner)s AND status <> 'cancelled'), "
                 "nextval(pg_get_serial_sequence('courses_seatbooking', 'id')) "
                 "FROM courses_seatbooking WHERE session_id = %(session)s", "floor_count")
BOOKING = Prepared("INSERT INTO courses_seatbooking (id, status, ticket_code, created_at, updated_at, learner_id, "
                   "session_id, induction_note, induction_result) VALUES (%s, %s, %s, %s, %s, %s, %s, '', '')",
                   "floor_booking")
EMAIL = Prepared("INSERT INTO accounts_notification (kind, dedup_key, subject, body, created_at, attempts, "
                 "last_error, user_id, attachment_name, attachment_type, next_attempt_at, state) "
                 "VALUES (%s, %s, '', '', %s, 0, '', %s, '', '', %s, 'due') ON CONFLICT (dedup_key) DO NOTHING",
                 "floor_email")


@csrf_exempt
def floor_book(request, session_id: int):
    digest = ApiToken.hash(request.headers.get("Authorization", "")[len("Bearer "):])
    found = Writes().read(TOKEN_USER, [digest])
    if not found:
        return JsonResponse({"code": "unauthorized"}, status=401)
    learner_id, now = found[0][0], timezone.now()
    with Writes.atomic() as writes:
        locked = []
        writes.add(LOCK, {"session": session_id}, then=locked.extend)
        ((taken, mine, booking_id),) = writes.read(COUNT, {"session": session_id, "learner": learner_id})
        if mine is not None:
            return JsonResponse({"id": mine, "created": False})
        status = "confirmed" if taken < locked[0][0] else "waitlisted"
        writes.add(BOOKING, [booking_id, status, secrets.token_urlsafe(12), now, now, learner_id, session_id])
        writes.add(EMAIL, [f"seat_{status}", f"floor-{booking_id}", now, learner_id, now])
    return JsonResponse({"id": booking_id, "status": status, "created": True}, status=201)


urlpatterns = [path("floor/sessions/<int:session_id>/book", floor_book), *product_urls]
