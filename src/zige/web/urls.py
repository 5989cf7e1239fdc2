from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("zige.reports.urls")),
    path("accounts/", include("zige.accounts.urls")),
    path("roster/", include("zige.roster.urls")),
    path("imports/", include("zige.feeds.urls")),
    path("runs/", include("zige.certification.urls")),
    path("audit/", include("zige.audit.urls")),
    path("api/", include("zige.api.urls")),
    path("notifications/", include("zige.notifications.urls")),
    path("verification/", include("zige.verification.urls")),
    path("benefits/", include("zige.benefits.urls")),
    path("ledger/", include("zige.ledger.urls")),
    path("admin/", admin.site.urls),
]
