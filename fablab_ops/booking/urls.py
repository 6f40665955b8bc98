from django.urls import path

from fablab_ops.booking import views

app_name = "booking"

urlpatterns = [
    path("reservations/", views.my_reservations, name="my_reservations"),
]
