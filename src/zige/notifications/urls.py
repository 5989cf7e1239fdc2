from django.urls import path

from zige.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("units/<str:unit_no>/", views.unit_notices, name="unit_notices"),
    path("units/<str:unit_no>/notices.csv", views.unit_notices_csv, name="unit_notices_csv"),
    path("receipts/<str:provider>/", views.receipt, name="receipt"),
]
