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
    path("manage/schedule/one/", views.schedule_one, name="schedule_one"),
    path("manage/courses/", views.course_list, name="course_list"),
    path("manage/courses/new/", views.course_edit, name="course_new"),
    path("manage/courses/<int:course_id>/", views.course_edit, name="course_edit"),
    path("manage/sessions/<int:session_id>/roster/", views.roster, name="roster"),
    path("manage/sessions/<int:session_id>/message/", views.message_session, name="message_session"),
    path("manage/sessions/<int:session_id>/cancel/", views.cancel_session, name="cancel_session"),
    path("manage/sign-in.pdf", views.sign_in_sheet, name="sign_in_sheet"),
    path("inductions/", views.inductions, name="inductions"),
    path("inductions/<int:session_id>/", views.induction_results, name="induction_results"),
    path("my/certifications/", views.my_certifications, name="my_certifications"),
]
