from django.urls import path

from fablab_ops.booking import views

app_name = "booking"

urlpatterns = [
    path("reservations/", views.my_reservations, name="my_reservations"),
    path("reservations/<int:reservation_id>/", views.reservation, name="reservation"),
    path("reservations/<int:reservation_id>/cancel/", views.cancel, name="cancel"),
    path("reservations/<int:reservation_id>/calendar.ics", views.reservation_calendar, name="reservation_calendar"),
    path("search/", views.search, name="search"),
    path("reserve/", views.reserve_slot, name="reserve_slot"),
    path("machines/<slug:lab>/<slug:machine>/", views.machine_detail, name="machine_detail"),
    path("labs/<slug:lab>/day/", views.lab_day, name="lab_day"),
    path("labs/<slug:lab>/maintenance/", views.plan_maintenance, name="plan_maintenance"),
    path("certifications/", views.certifications, name="certifications"),
    path("certifications/<int:certification_id>/revoke/", views.revoke_certification, name="revoke_certification"),
]
