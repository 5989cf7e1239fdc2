"""SMS gateways behind one interface: a file/console adapter for the demo and an HTTP adapter
for the SMS services Chinese agencies use (Aliyun 短信服务 and Tencent Cloud 短信 request formats,
signing and answers).

`send` answers an `Outcome`: `sent` (accepted; with the provider's message id), `temporary`
(try again later: timeouts, 5xx, throttling, a wrong key or an empty balance — a person fixes
those and nothing is lost) or `permanent` (this message can never go: an invalid number, a
refused template parameter). `lookup` asks the gateway whether a message with our id was
already accepted — the sender uses it after a crash between the call and the record, so that a
message is never sent twice. It raises `GatewayUnavailable` when it cannot tell.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from zige.notifications.config import NotifyConfig

SENT, TEMPORARY, PERMANENT = "sent", "temporary", "permanent"


@dataclass(frozen=True)
class SmsRequest:
    out_id: str  # our id, echoed by the provider in receipts and status queries
    mobile: str  # 11 digits
    text: str
    template_id: str
    params: dict[str, str]
    sign_name: str


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | temporary | permanent
    provider_message_id: str = ""
    code: str = ""
    detail: str = ""


class GatewayUnavailable(Exception):
    """The gateway could not answer (timeout, refused, 5xx): try again later. `maybe_sent`:
    the request may have reached it (a timeout), so look the message up before resending."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class Gateway(Protocol):
    name: str

    def send(self, request: SmsRequest) -> Outcome: ...

    def lookup(self, *, out_id: str, mobile: str, sent_on: date) -> Outcome | None:
        """The outcome of an earlier send with `out_id`, or None when the gateway has none."""
        ...


# ---------------------------------------------------------------------------------------------
# File / console


@dataclass
class FileGateway:
    """Appends each message as one JSON line to a file (and echoes it when `echo`): the demo's
    gateway, and a record an operator can hand to another sending system."""

    path: Path
    echo: bool = False
    name: str = "file"

    def send(self, request: SmsRequest) -> Outcome:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        message_id = uuid.uuid4().hex
        line = json.dumps(
            {"id": message_id, "out_id": request.out_id, "mobile": request.mobile, "sign": request.sign_name,
             "text": request.text, "at": datetime.now(UTC).isoformat()},
            ensure_ascii=False,
        ) + "\n"  # fmt: skip
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.echo:
            print(f"[SMS → {request.mobile}] 【{request.sign_name}】{request.text}", flush=True)
        return Outcome(SENT, provider_message_id=message_id)

    def lookup(self, *, out_id: str, mobile: str, sent_on: date) -> Outcome | None:
        if not self.path.is_file():
            return None
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: that send did not finish
                if row.get("out_id") == out_id:
                    return Outcome(SENT, provider_message_id=str(row.get("id", "")))
        return None


# ---------------------------------------------------------------------------------------------
# HTTP: provider error codes


ALIYUN_TEMPORARY = (
    "isp.SYSTEM_ERROR", "isp.OUT_OF_SERVICE", "isv.OUT_OF_SERVICE", "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH", "Throttling", "ServiceUnavailable", "InternalError",
    "isp.RAM_PERMISSION_DENY", "InvalidAccessKeyId", "SignatureDoesNotMatch", "SignatureNonceUsed",
    "InvalidTimeStamp",
)  # fmt: skip
TENCENT_TEMPORARY = (
    "InternalError", "RequestLimitExceeded", "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberThirtySecondLimit", "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.DeliveryFrequencyLimit", "FailedOperation.InsufficientBalanceInSmsPackage",
    "ResourceUnavailable", "AuthFailure", "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
)  # fmt: skip


def classify(provider: str, code: str) -> str:
    """temporary or permanent, for a provider's error code (prefixes count: `Throttling.User`).

    Wrong keys and an empty balance are temporary: a person fixes them and no message is lost."""
    table = ALIYUN_TEMPORARY if provider == "aliyun" else TENCENT_TEMPORARY
    return TEMPORARY if any(code == t or code.startswith(t + ".") for t in table) else PERMANENT


def _percent(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def aliyun_sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Aliyun RPC signature (SignatureVersion 1.0, HMAC-SHA1)."""
    canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_percent('/')}&{_percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def tencent_authorization(
    *, secret_id: str, secret_key: str, host: str, payload: str, timestamp: int, service: str = "sms"
) -> str:
    """Tencent Cloud API 3.0 `TC3-HMAC-SHA256` Authorization header (content-type;host signed)."""
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST", "/", "",
            f"content-type:application/json; charset=utf-8\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload.encode()).hexdigest(),
        ]
    )  # fmt: skip
    scope = f"{day}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
        f"Signature={signature}"
    )


@dataclass
class HttpGateway:
    """A provider's HTTP API at `config.sms_url` (Aliyun RPC or Tencent API 3.0 format)."""

    config: NotifyConfig
    clock: Any = field(default=lambda: datetime.now(UTC))  # for the signatures' timestamps
    name: str = "http"

    def __post_init__(self) -> None:
        self.name = self.config.provider

    # -- transport

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(self.config.sms_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except TimeoutError as exc:
            raise GatewayUnavailable(f"timeout after {self.config.timeout_s}s", maybe_sent=True) from exc
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            raise GatewayUnavailable(f"unreachable: {exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            data = None
        return status, data

    def _call(self, action: str, params: dict[str, Any]) -> tuple[int, Any]:
        if self.config.provider == "aliyun":
            return self._aliyun(action, params)
        return self._tencent(action, params)

    def _aliyun(self, action: str, params: dict[str, Any]) -> tuple[int, Any]:
        c = self.config
        query = {
            "AccessKeyId": c.access_key_id, "Action": action, "Format": "JSON", "RegionId": c.region,
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "Timestamp": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
            **{k: str(v) for k, v in params.items()},
        }  # fmt: skip
        query["Signature"] = aliyun_sign(query, c.access_key_secret)
        body = urllib.parse.urlencode(query).encode()
        return self._post(body, {"Content-Type": "application/x-www-form-urlencoded"})

    def _tencent(self, action: str, params: dict[str, Any]) -> tuple[int, Any]:
        c = self.config
        payload = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
        host = urllib.parse.urlsplit(c.sms_url).netloc
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8", "Host": host, "X-TC-Action": action,
            "X-TC-Version": "2021-01-11", "X-TC-Timestamp": str(timestamp), "X-TC-Region": c.region,
            "Authorization": tencent_authorization(
                secret_id=c.access_key_id, secret_key=c.access_key_secret, host=host, payload=payload,
                timestamp=timestamp,
            ),
        }  # fmt: skip
        return self._post(payload.encode(), headers)

    # -- sending

    def send(self, request: SmsRequest) -> Outcome:
        c = self.config
        try:
            if c.provider == "aliyun":
                status, data = self._call(
                    "SendSms",
                    {"PhoneNumbers": request.mobile, "SignName": request.sign_name,
                     "TemplateCode": request.template_id,
                     "TemplateParam": json.dumps(request.params, ensure_ascii=False), "OutId": request.out_id},
                )  # fmt: skip
            else:
                status, data = self._call(
                    "SendSms",
                    {"PhoneNumberSet": [f"+86{request.mobile}"], "SmsSdkAppId": c.sdk_app_id,
                     "SignName": request.sign_name, "TemplateId": request.template_id,
                     "TemplateParamSet": list(request.params.values()), "SessionContext": request.out_id},
                )  # fmt: skip
        except GatewayUnavailable as exc:
            return Outcome(TEMPORARY, code="timeout" if exc.maybe_sent else "unreachable", detail=str(exc))
        return self.parse_send(status, data)

    def parse_send(self, status: int, data: Any) -> Outcome:
        provider = self.config.provider
        if status >= 500 or status == 429:
            return Outcome(TEMPORARY, code=f"http_{status}", detail=str(data)[:500])
        if not isinstance(data, dict):
            kind = TEMPORARY if status >= 500 else PERMANENT
            return Outcome(kind, code=f"http_{status}", detail="the gateway's answer is not JSON")
        if provider == "aliyun":
            code = str(data.get("Code", ""))
            if status == 200 and code == "OK":
                return Outcome(SENT, provider_message_id=str(data.get("BizId", "")), code="OK")
            return Outcome(
                classify(provider, code), code=code or f"http_{status}", detail=str(data.get("Message", ""))
            )
        response = data.get("Response", {}) if isinstance(data.get("Response"), dict) else {}
        if "Error" in response:
            code = str(response["Error"].get("Code", ""))
            return Outcome(
                classify(provider, code), code=code, detail=str(response["Error"].get("Message", ""))
            )
        rows = response.get("SendStatusSet") or []
        if not rows:
            return Outcome(TEMPORARY, code=f"http_{status}", detail="no SendStatusSet in the answer")
        row = rows[0]
        code = str(row.get("Code", ""))
        if code.lower() == "ok":
            return Outcome(SENT, provider_message_id=str(row.get("SerialNo", "")), code=code)
        return Outcome(classify(provider, code), code=code, detail=str(row.get("Message", "")))

    # -- finding an earlier send

    def lookup(self, *, out_id: str, mobile: str, sent_on: date) -> Outcome | None:
        """Aliyun QuerySendDetails / Tencent PullSmsSendStatusByPhoneNumber for the number and
        day, matched on our OutId / SessionContext."""
        c = self.config
        if c.provider == "aliyun":
            status, data = self._call(
                "QuerySendDetails",
                {
                    "PhoneNumber": mobile,
                    "SendDate": sent_on.strftime("%Y%m%d"),
                    "PageSize": "50",
                    "CurrentPage": "1",
                },
            )
            if status != 200 or not isinstance(data, dict) or data.get("Code") != "OK":
                raise GatewayUnavailable(f"QuerySendDetails: HTTP {status} {str(data)[:200]}")
            rows = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            for row in rows:
                if row.get("OutId") == out_id:
                    return Outcome(SENT, provider_message_id=str(row.get("BizId", "")), code="found")
            return None
        begin = int(datetime(sent_on.year, sent_on.month, sent_on.day, tzinfo=UTC).timestamp()) - 86400
        status, data = self._call(
            "PullSmsSendStatusByPhoneNumber",
            {"BeginTime": begin, "EndTime": begin + 3 * 86400, "Offset": 0, "Limit": 100,
             "PhoneNumber": f"+86{mobile}", "SmsSdkAppId": c.sdk_app_id},
        )  # fmt: skip
        response = data.get("Response") if isinstance(data, dict) else None
        if status != 200 or not isinstance(response, dict) or "Error" in response:
            raise GatewayUnavailable(f"PullSmsSendStatusByPhoneNumber: HTTP {status} {str(data)[:200]}")
        for row in response.get("PullSmsSendStatusSet") or []:
            if row.get("SessionContext") == out_id:
                return Outcome(SENT, provider_message_id=str(row.get("SerialNo", "")), code="found")
        return None


def build(config: NotifyConfig, *, data_dir: Path, echo: bool = False) -> Gateway:
    if config.gateway == "http":
        return HttpGateway(config)
    path = Path(config.outbox_file) if config.outbox_file else data_dir / "sms" / "outbox.jsonl"
    return FileGateway(path=path, echo=echo)
