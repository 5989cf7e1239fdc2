from django.urls import path

from zige.feeds import views

app_name = "feeds"

urlpatterns = [
    path("", views.imports, name="list"),
    path("upload/", views.upload, name="upload"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/rejects.csv", views.rejects_csv, name="rejects_csv"),
]
