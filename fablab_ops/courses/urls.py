from django.urls import path

from fablab_ops.courses import views

app_name = "courses"

urlpatterns = [
    path("", views.session_list, name="session_list"),
    path("sessions/<int:session_id>/", views.session_detail, name="session_detail"),
    path("sessions/<int:session_id>/book/", views.book, name="book"),
    path("my/", views.my_bookings, name="my_bookings"),
    path("bookings/<int:booking_id>/", views.ticket, name="ticket"),
    path("bookings/<int:booking_id>/cancel/", views.cancel, name="cancel"),
    path("bookings/<int:booking_id>/confirm/", views.confirm, name="confirm"),
    path("bookings/<int:booking_id>/calendar.ics", views.booking_calendar, name="booking_calendar"),
    path("calendar/labs/<slug:slug>.ics", views.lab_feed, name="lab_feed"),
    path("calendar/courses/<slug:slug>.ics", views.course_feed, name="course_feed"),
    path("calendar/<str:secret>.ics", views.learner_feed, name="learner_feed"),
    path("manage/", views.manage_sessions, name="manage_sessions"),
    path("manage/schedule/", views.schedule, name="schedule"),
    path("manage/sessions/<int:session_id>/", views.edit_session, name="edit_session"),
]
