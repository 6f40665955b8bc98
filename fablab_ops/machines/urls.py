from django.urls import path

from fablab_ops.machines import views

app_name = "machines"

urlpatterns = [
    path("", views.lab_list, name="lab_list"),
    path("live/", views.live, name="live"),
]
