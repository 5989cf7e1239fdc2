from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "zige.notifications"
    label = "notifications"
    verbose_name = "认证提醒与无人值守运行"
