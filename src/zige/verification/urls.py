from django.urls import path

from zige.verification import views

app_name = "verification"
urlpatterns = [
    path("", views.task_list, name="list"),
    path("export.csv", views.task_list_export, name="export"),
    path("review/", views.review_queue, name="queue"),
    path("units/", views.unit_progress, name="units"),
    path("bulk/", views.bulk_upload, name="bulk"),
    path("form1.xlsx", views.form1_download, name="form1"),
    path("tasks/<int:pk>/", views.task_detail, name="detail"),
    path("tasks/<int:pk>/submit/", views.task_submit_view, name="submit"),
    path("tasks/<int:pk>/review/", views.task_review_view, name="review"),
    path("tasks/<int:pk>/resolve/", views.task_resolve_view, name="resolve"),
    path("attachments/<int:pk>/", views.attachment_view, name="attachment"),
]
