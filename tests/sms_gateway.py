"""A real SMS gateway on 127.0.0.1 for the tests: Aliyun- and Tencent-format SendSms, with
signature checks, status queries, delivery-receipt callbacks and injected faults.

Faults are taken from `faults` one per SendSms request, in order:
  "500"            answer HTTP 500 without accepting the message
  "timeout"        accept the message, then answer only after `slow_s` (the client times out)
  "timeout_before" wait `slow_s` without accepting, then answer 500
  "code:<CODE>"    answer the provider's error CODE (not accepted)
`down()` / `up()` stop and restart the listener on the same port. `accepted` counts each
accepted message by our out id (OutId / SessionContext) — the test's ground truth.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from zige.notifications.gateways import aliyun_sign, tencent_authorization

KEY_ID, SECRET = "test-key-id", "test-secret"


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # up() again on the same port right after down()
    daemon_threads = True


class SmsGatewayServer:
    def __init__(self, provider: str = "aliyun", *, delay_s: float = 0.0, slow_s: float = 3.0) -> None:
        self.provider = provider
        self.delay_s = delay_s
        self.slow_s = slow_s
        self.faults: list[str] = []
        self.accepted: Counter[str] = Counter()
        self.records: list[dict[str, Any]] = []
        self.send_requests: list[dict[str, str]] = []  # Aliyun SendSms parameters, as received
        self.requests = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def up(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = server.handle(dict(self.headers), body)
                raw = json.dumps(answer, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        httpd = _Server(("127.0.0.1", self.port), Handler)
        self.port = httpd.server_address[1]
        self._server = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- protocol

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.requests += 1
        lower = {k.lower(): v for k, v in headers.items()}
        if "x-tc-action" in lower:
            return self._tencent(lower, body)
        return self._aliyun(body)

    def _fault(self) -> str:
        with self.lock:
            return self.faults.pop(0) if self.faults else ""

    def _accept(self, out_id: str, mobile: str) -> str:
        with self.lock:
            self.accepted[out_id] += 1
            pid = f"{self.provider}-{len(self.records) + 1}"
            self.records.append({"out_id": out_id, "mobile": mobile, "id": pid})
        return pid

    def _aliyun(self, body: bytes) -> tuple[int, Any]:
        params = dict(urllib.parse.parse_qsl(body.decode()))
        signature = params.pop("Signature", "")
        if params.get("AccessKeyId") != KEY_ID or aliyun_sign(params, SECRET) != signature:
            self.bad_signatures += 1
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "bad signature"}
        if params.get("Action") == "QuerySendDetails":
            rows = [
                {
                    "PhoneNum": r["mobile"],
                    "SendStatus": 3,
                    "ErrCode": "DELIVERED",
                    "OutId": r["out_id"],
                    "BizId": r["id"],
                }
                for r in self.records
                if r["mobile"] == params.get("PhoneNumber")
            ]
            return 200, {
                "Code": "OK",
                "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows},
            }
        with self.lock:
            self.send_requests.append(params)
        return self._send(params.get("OutId", ""), params.get("PhoneNumbers", ""))

    def _send(self, out_id: str, mobile: str) -> tuple[int, Any]:
        fault = self._fault()
        if fault == "500":
            return 500, {"Code": "isp.SYSTEM_ERROR", "Message": "internal"}
        if fault == "timeout_before":
            time.sleep(self.slow_s)
            return 500, {"Code": "isp.SYSTEM_ERROR", "Message": "late"}
        if fault.startswith("code:"):
            code = fault[5:]
            if self.provider == "tencent":
                return 200, {
                    "Response": {
                        "SendStatusSet": [{"Code": code, "Message": code, "SerialNo": ""}],
                        "RequestId": "r",
                    }
                }
            return 200, {"Code": code, "Message": code, "RequestId": "r"}
        pid = self._accept(out_id, mobile)
        if fault == "timeout":
            time.sleep(self.slow_s)
        elif self.delay_s:
            time.sleep(self.delay_s)
        if self.provider == "tencent":
            return 200, {"Response": {"SendStatusSet": [{"SerialNo": pid, "PhoneNumber": f"+86{mobile}", "Code": "Ok",
                                                          "Message": "send success", "SessionContext": out_id}], "RequestId": "r"}}  # fmt: skip
        return 200, {"Code": "OK", "Message": "OK", "BizId": pid, "RequestId": "r"}

    def _tencent(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        payload = body.decode()
        expected = tencent_authorization(
            secret_id=KEY_ID, secret_key=SECRET, host=headers.get("host", ""), payload=payload,
            timestamp=int(headers.get("x-tc-timestamp", "0")),
        )  # fmt: skip
        if headers.get("authorization") != expected:
            self.bad_signatures += 1
            return 200, {
                "Response": {
                    "Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"},
                    "RequestId": "r",
                }
            }
        data = json.loads(payload)
        if headers.get("x-tc-action") == "PullSmsSendStatusByPhoneNumber":
            rows = [
                {
                    "SerialNo": r["id"],
                    "PhoneNumber": data["PhoneNumber"],
                    "ReportStatus": "SUCCESS",
                    "SessionContext": r["out_id"],
                }
                for r in self.records
                if f"+86{r['mobile']}" == data.get("PhoneNumber")
            ]
            return 200, {"Response": {"PullSmsSendStatusSet": rows, "RequestId": "r"}}
        return self._send(data.get("SessionContext", ""), data["PhoneNumberSet"][0].removeprefix("+86"))

    # --- receipts

    def receipts(self) -> list[dict[str, Any]]:
        """The delivery reports this provider would push for every accepted message."""
        if self.provider == "tencent":
            return [
                {"user_receive_time": "2026-11-30 17:05:00", "nationcode": "86", "mobile": r["mobile"],
                 "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": r["id"]}
                for r in self.records
            ]  # fmt: skip
        return [
            {"phone_number": r["mobile"], "send_time": "2026-11-30 17:00:00", "report_time": "2026-11-30 17:05:00",
             "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
             "biz_id": r["id"], "out_id": r["out_id"]}
            for r in self.records
        ]  # fmt: skip

    def push_receipts(self, url: str, *, times: int = 2) -> list[int]:
        """POST the receipts to zige's callback, each batch `times` times (providers retry)."""
        statuses = []
        data = json.dumps(self.receipts(), ensure_ascii=False).encode()
        for _ in range(times):
            request = urllib.request.Request(
                url, data=data, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
        return statuses
