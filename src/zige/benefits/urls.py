from django.urls import path

from zige.benefits import views

app_name = "benefits"

urlpatterns = [
    path("", views.actions, name="actions"),
    path("actions/new/", views.action_new, name="action_new"),
    path("actions/approve/", views.actions_approve, name="actions_approve"),
    path("actions/<int:pk>/", views.action_detail, name="action"),
    path("actions/<int:pk>/approve/", views.action_approve, name="action_approve"),
    path("actions/<int:pk>/reject/", views.action_reject, name="action_reject"),
    path("actions/<int:pk>/withdraw/", views.action_withdraw, name="action_withdraw"),
    path("actions/<int:pk>/reverse/", views.action_reverse, name="action_reverse"),
    path("batches/", views.batches, name="batches"),
    path("batches/create/", views.batch_create, name="batch_create"),
    path("batches/<int:pk>/", views.batch_detail, name="batch"),
    path("batches/<int:pk>/download/<str:kind>/", views.batch_download, name="batch_download"),
    path("batches/<int:pk>/reexport/", views.batch_reexport, name="batch_reexport"),
    path("batches/<int:pk>/confirm/", views.batch_confirm, name="batch_confirm"),
    path("batches/<int:pk>/void/", views.batch_void, name="batch_void"),
    path("recovery/", views.recoveries, name="recoveries"),
    path("recovery/<int:pk>/", views.recovery_detail, name="recovery"),
    path("recovery/<int:pk>/notify/", views.recovery_notify, name="recovery_notify"),
    path("recovery/<int:pk>/payment/", views.recovery_payment, name="recovery_payment"),
    path("recovery/<int:pk>/write-off/", views.recovery_write_off, name="recovery_write_off"),
    path(
        "recovery/<int:pk>/write-off/decide/",
        views.recovery_write_off_decide,
        name="recovery_write_off_decide",
    ),
    path("recovery/<int:pk>/refund/", views.recovery_refund, name="recovery_refund"),
    path("recovery/<int:pk>/refund/decide/", views.recovery_refund_decide, name="recovery_refund_decide"),
    path("fraud/", views.frauds, name="frauds"),
    path("fraud/new/", views.fraud_new, name="fraud_new"),
    path("fraud/<int:pk>/", views.fraud_detail, name="fraud"),
    path("fraud/<int:pk>/fine/", views.fraud_fine, name="fraud_fine"),
    path("fraud/<int:pk>/collect/", views.fraud_collect, name="fraud_collect"),
    path("fraud/<int:pk>/close/", views.fraud_close, name="fraud_close"),
    path("fraud/<int:pk>/dismiss/", views.fraud_dismiss, name="fraud_dismiss"),
    path("fraud/<int:pk>/refer/", views.fraud_refer, name="fraud_refer"),
    path("blacklist/", views.blacklist, name="blacklist"),
    path("blacklist/add/", views.blacklist_add, name="blacklist_add"),
    path("report/", views.report, name="report"),
    path("report.csv", views.report_csv, name="report_csv"),
]
