from django.apps import AppConfig


class CertificationConfig(AppConfig):
    name = "zige.certification"
    label = "certification"
    default_auto_field = "django.db.models.BigAutoField"
