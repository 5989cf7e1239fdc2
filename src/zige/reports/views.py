"""The dashboard (首页)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from zige.reports import selectors
from zige.reports.pages import people_view


@people_view
def dashboard(request: HttpRequest) -> HttpResponse:
    board = selectors.dashboard(request.user)
    cards = [
        {"status": s, "n": board.by_status.get(s, 0), "share": _share(board.by_status.get(s, 0), board.total)}
        for s in selectors.STATUS_ORDER
    ]
    return render(
        request,
        "reports/dashboard.html",
        {
            "board": board,
            "cards": cards,
            "charts": selectors.chart_options(board),
            "work": selectors.work_queue(request.user, today=timezone.localdate()),
            "nav": "dashboard",
        },
    )


def _share(n: int, total: int) -> str:
    return f"{n * 100 / total:.1f}%" if total else "—"
