"""Mounted at /api/ by zige.web.urls: the django-ninja API (OpenAPI document at /api/openapi.json)."""

from django.urls import URLPattern, URLResolver

from zige.api.views import api

app_name = "api"  # the namespace NinjaAPI(urls_namespace="api") reverses its own URLs in

urlpatterns: list[URLPattern | URLResolver] = api.urls[0]
