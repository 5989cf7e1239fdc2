from django.urls import path

from zige.certification import views

app_name = "certification"

urlpatterns = [
    path("", views.runs, name="list"),
    path("start/", views.start, name="start"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/progress/", views.progress, name="progress"),
]
