from django.apps import AppConfig


class BenefitsConfig(AppConfig):
    name = "zige.benefits"
    verbose_name = "待遇处理 Payment actions and cases"
