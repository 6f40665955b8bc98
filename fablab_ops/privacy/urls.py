from django.urls import path

from fablab_ops.privacy import views

app_name = "privacy"

urlpatterns = [
    path("", views.notice, name="notice"),
    path("consents/<str:purpose>/<str:action>/", views.consent, name="consent"),
    path("export/", views.export_page, name="export"),
    path("export.json", views.export_json, name="export_json"),
    path("erase/", views.erase, name="erase"),
    path("guardian/<str:token>/", views.guardian, name="guardian"),
    path("guardian-resend/", views.guardian_resend, name="guardian_resend"),
    path("learners/<int:user_id>/export/", views.staff_export, name="staff_export"),
    path("learners/<int:user_id>/erase/", views.staff_erase, name="staff_erase"),
    path("confirm/", views.confirm, name="confirm"),
    path("schools/", views.school_class, name="school_class"),
    path("schools/consents/<int:consent_id>/scan/", views.school_consent_scan, name="school_consent_scan"),
]
