from django.urls import path

from zige.ledger import views

app_name = "ledger"

urlpatterns = [
    path("", views.index, name="index"),
    path("units/<str:unit_no>/", views.unit_ledger, name="unit"),
    path("units/<str:unit_no>/not-visited.csv", views.not_visited_csv, name="not_visited_csv"),
    path("people/<str:person_no>/", views.person, name="person"),
    path("people/<str:person_no>/marks/", views.mark_add, name="mark_add"),
    path("people/<str:person_no>/visits/new/", views.visit_new, name="visit_new"),
    path("marks/<int:pk>/remove/", views.mark_remove, name="mark_remove"),
    path("visits/<int:pk>/photo/", views.visit_photo, name="visit_photo"),
    path("other-province/", views.other_province, name="other_province"),
    path("other-province/export/", views.other_province_export, name="other_province_export"),
    path("other-province/exports/<int:pk>/", views.export_download, name="export_download"),
]
