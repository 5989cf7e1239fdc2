from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "zige.ledger"
    verbose_name = "服务台账 Special groups and other-province residents"
