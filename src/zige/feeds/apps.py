from django.apps import AppConfig


class FeedsConfig(AppConfig):
    name = "zige.feeds"
    label = "feeds"
    default_auto_field = "django.db.models.BigAutoField"
