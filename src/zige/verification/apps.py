from django.apps import AppConfig


class VerificationConfig(AppConfig):
    name = "zige.verification"
    verbose_name = "单位核实 Unit verification"
