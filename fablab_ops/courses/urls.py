from django.urls import path

from fablab_ops.courses import views

app_name = "courses"

urlpatterns = [
    path("", views.session_list, name="session_list"),
]
