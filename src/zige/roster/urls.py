from django.urls import path

from zige.roster import views

app_name = "roster"

urlpatterns = [
    path("", views.search, name="search"),
    path("people/<str:person_no>/", views.person, name="person"),
    path("units/", views.units, name="units"),
    path("units/<str:unit_no>/", views.unit, name="unit"),
]
