from django.urls import path

from fablab_ops.door import views

app_name = "door"

# Under /booking/, beside the lab's day, where technicians have always found the door.
urlpatterns = [
    path("labs/<slug:lab>/scanner/", views.scanner, name="scanner"),
    path("labs/<slug:lab>/absences/", views.lab_absences, name="lab_absences"),
]
