from django.urls import path

from fablab_ops.machines import views

app_name = "machines"

urlpatterns = [
    path("", views.lab_list, name="lab_list"),
    path("live/", views.live, name="live"),
    path("live/board/", views.live_board, name="live_board"),
    path("labs/<slug:lab>/", views.lab_machines, name="lab_machines"),
    path("labs/<slug:lab>/alerts/<int:alert_id>/acknowledge/", views.acknowledge_alert, name="acknowledge_alert"),
    path("labs/<slug:lab>/alerts/<int:alert_id>/resolve/", views.resolve_alert, name="resolve_alert"),
    path("labs/<slug:lab>/machines/<slug:machine>/maintenance-done/", views.record_maintenance,
         name="record_maintenance"),
    path("labs/<slug:lab>/quarantine/", views.quarantine, name="quarantine"),
]
