from django.urls import path

from zige.feeds import suggestion_views, views

app_name = "feeds"

urlpatterns = [
    path("", views.imports, name="list"),
    path("upload/", views.upload, name="upload"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/rejects.csv", views.rejects_csv, name="rejects_csv"),
    path("<int:pk>/suggestions/", suggestion_views.suggestion_list, name="suggestions"),
    path("<int:pk>/suggestions/find/", suggestion_views.suggestion_find, name="suggestions_find"),
    path("suggestions/<int:pk>/accept/", suggestion_views.suggestion_accept, name="suggestion_accept"),
    path("suggestions/<int:pk>/reject/", suggestion_views.suggestion_reject, name="suggestion_reject"),
]
