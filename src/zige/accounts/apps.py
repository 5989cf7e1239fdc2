from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "zige.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from zige.accounts import signals  # noqa: F401  (connects the login/logout audit)
