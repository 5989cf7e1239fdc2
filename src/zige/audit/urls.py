from django.urls import path

from zige.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.browse, name="browse"),
    path("export/", views.export, name="export"),
]
