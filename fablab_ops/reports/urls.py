from django.urls import path

from fablab_ops.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.monthly, name="monthly"),
    path("download/", views.download, name="download"),
    path("targets/", views.targets, name="targets"),
]
