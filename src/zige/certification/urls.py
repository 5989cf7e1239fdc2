from django.urls import URLPattern, URLResolver

app_name = "certification"

urlpatterns: list[URLPattern | URLResolver] = []
