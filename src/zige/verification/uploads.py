"""Evidence files (photos, short videos, scanned written confirmations): checked, then stored.

Shared by the verification work (附件1 evidence) and the service ledger (home-visit photos).

- `upload_check(name=, data=, allowed=)` reads the bytes (never more than the largest limit
  plus one), decides the file's kind from its CONTENT — JPEG/PNG/WebP must open and verify in
  Pillow, MP4/MOV must start with an ISO-BMFF `ftyp` box of a known brand followed by top-level
  boxes that include the media (`mdat`/`moov`/`moof`), PDF must start with
  `%PDF-` — never from the file name or the browser's content type, applies the size limit of
  that kind, and runs the virus-scan hook. Anything else raises `UploadRefused` with a message
  for the user.
- `uploads_precheck(files=)` checks the files of one submission by the sizes the upload handler
  already knows, before any content is read: at most `ZIGE_UPLOAD_MAX_FILES` files and
  `ZIGE_UPLOAD_MAX_TOTAL_BYTES` together, none larger than the largest limit of its kinds. The
  checked contents of one submission are held in memory together, so this bounds them.
- `attachment_store(upload=)` writes the file under `ZIGE_DATA_DIR/attachments/ab/<sha256>.<ext>`
  (outside the web root; the same content is stored once) and returns where.
- `attachment_path(stored_path)` is the file to send back, from a view that has checked that
  the viewer may see the person.

The virus-scan hook (`ZIGE_VIRUS_SCAN`): `module:function` called with the file's path and
returning True for clean, or a shell command containing `{path}` whose exit status 0 means
clean and 1 infected. Unset: the file is recorded as `not_scanned`. A scanner that fails (any
other exit status, an exception) refuses the file: nothing unscanned slips through a broken
scanner.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from zige.verification import config

IMAGES = frozenset({"jpeg", "png", "webp"})
VIDEOS = frozenset({"mp4", "mov"})
DOCUMENTS = frozenset({"pdf"})
EVERYTHING = IMAGES | VIDEOS | DOCUMENTS

EXTENSION = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "mp4": ".mp4", "mov": ".mov", "pdf": ".pdf"}
CONTENT_TYPE = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "pdf": "application/pdf",
}
# In running Chinese text: no space between the format and its noun (不是真正的JPEG图片).
LABEL = {"jpeg": "JPEG图片", "png": "PNG图片", "webp": "WebP图片", "mp4": "MP4视频", "mov": "MOV视频",
         "pdf": "PDF文档"}  # fmt: skip

# ISO-BMFF major brands: QuickTime, and the MP4 family (ISO, MPEG-4, H.264, 3GPP, Apple M4V).
_MOV_BRANDS = {b"qt  "}
_MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ",
               b"M4VH", b"M4VP", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"dash", b"MSNV", b"f4v ", b"mmp4"}  # fmt: skip


class UploadRefused(ValueError):
    """A file that is not accepted. `str(exc)` is the officer's message, in Chinese only; `detail`
    is the English text for support staff (logged, never shown on a page)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class CheckedUpload:
    name: str  # the name the user gave (for display only)
    file_kind: str  # jpeg, png, webp, mp4, mov, pdf
    size: int
    sha256: str
    scan: str  # clean / not_scanned
    data: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE[self.file_kind]


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    file_kind: str
    stored_path: str  # relative to attachments_dir()


def attachments_dir() -> Path:
    return Path(settings.DATA_DIR) / "attachments"


def _read(data: bytes | IO[bytes], limit: int) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if hasattr(data, "seek"):
        data.seek(0)
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = data.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def sniff(head: bytes) -> str | None:
    """The kind a file's first bytes claim (before any deeper check), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MOV_BRANDS:
            return "mov"
        if brand in _MP4_BRANDS:
            return "mp4"
    return None


def _image_ok(data: bytes, kind: str) -> bool:
    expected = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[kind]
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != expected:
                return False
            image.verify()  # structure and checksums (PNG CRCs); raises on a broken file
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes the pixels: a header followed by garbage fails here
            return image.width > 0 and image.height > 0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


# The boxes an MP4/MOV file holds at its top level (ISO/IEC 14496-12 and QuickTime), and the
# ones of which a video needs at least one: its media (`mdat`) or its description (`moov`, or
# the fragments `moof` of a fragmented MP4).
_TOP_LEVEL_BOXES = {b"ftyp", b"moov", b"mdat", b"moof", b"mfra", b"free", b"skip", b"wide", b"uuid", b"pdin",
                    b"meta", b"styp", b"sidx", b"ssix", b"prft", b"emsg", b"junk", b"pnot", b"PICT", b"meco",
                    b"udta", b"mvex", b"tfra", b"xml ", b"iinf", b"bxml"}  # fmt: skip
_MEDIA_BOXES = {b"moov", b"mdat", b"moof"}


def _video_ok(data: bytes) -> bool:
    """An ISO-BMFF file: a chain of boxes from the start, the first one `ftyp` with a sane size,
    every one a box an MP4/MOV holds at its top level, and among them its media or description
    (a valid `ftyp` in front of a web page or of nothing is no video). A box running past the end
    (a truncated tail) is tolerated."""
    size = int.from_bytes(data[0:4], "big")
    if size < 16 or size > len(data) or data[4:8] != b"ftyp":
        return False
    offset = 0
    media = False
    while offset + 8 <= len(data):  # every box header inside the file (a truncated tail is tolerated)
        box = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind not in _TOP_LEVEL_BOXES:
            return False
        media = media or kind in _MEDIA_BOXES
        if box == 1 and offset + 16 <= len(data):
            box = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if box == 0:
            break  # to the end of the file
        if box < 8:
            return False
        offset += box
    return media


def _pdf_ok(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]


def _scan(data: bytes, name: str) -> str:
    hook = config.virus_scan()
    if not hook:
        return "not_scanned"
    handle, temp = tempfile.mkstemp(prefix=".scan-", dir=tempfile.gettempdir())
    path = Path(temp)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        try:
            if "{path}" in hook:
                done = subprocess.run(
                    [part.replace("{path}", str(path)) for part in shlex.split(hook)],
                    capture_output=True, timeout=120, check=False,
                )  # fmt: skip
                if done.returncode == 1:
                    clean = False
                elif done.returncode == 0:
                    clean = True
                else:
                    raise RuntimeError(f"exit status {done.returncode}")
            else:
                module, _, function = hook.partition(":")
                clean = bool(getattr(importlib.import_module(module), function)(path))
        except Exception as exc:
            raise UploadRefused(
                f"病毒扫描失败，文件未接收：{name}。",
                f"The virus scan failed ({type(exc).__name__}); the file was not accepted.",
            ) from exc
    finally:
        path.unlink(missing_ok=True)
    if not clean:
        raise UploadRefused(
            f"文件“{name}”未通过病毒扫描，已拒收。", f"{name} failed the virus scan and was refused."
        )
    return "clean"


def _too_large(shown: str, size: int | None, limit: int, label: str = "") -> UploadRefused:
    """A file over its limit, sized as the import pages size files (filesizeformat: 字节 / KB /
    MB / GB); the exact bytes in the English detail only. `size` None: a stream without a
    known size, read only up to the limit, so its size is not known."""
    if size is None:
        return UploadRefused(
            f"文件“{shown}”过大（超过{label}上限 {filesizeformat(limit)}）。",
            f"{shown} is too large (more than its limit of {limit:,} bytes).",
        )
    return UploadRefused(
        f"文件“{shown}”过大（{filesizeformat(size)}，{label}上限 {filesizeformat(limit)}）。",
        f"{shown} is too large ({size:,} bytes; limit {limit:,}).",
    )


def uploads_precheck(*, files: Sequence[tuple[str, int | None, set[str] | frozenset[str]]]) -> None:
    """(name, size, allowed kinds) of every file of one submission, sizes as the upload handler
    counted them: raises `UploadRefused` before anything is read when there are too many files,
    too many bytes together, or a file larger than any kind it may be (see the module doc)."""
    most, budget = config.max_files(), config.max_total_bytes()
    if len(files) > most:
        raise UploadRefused(
            f"一次最多上传 {most} 个文件（本次 {len(files)} 个），请删减后重新提交。",
            f"At most {most} files per report ({len(files)} sent).",
        )
    total = 0
    for name, size, allowed in files:
        shown = Path(name.replace("\\", "/")).name[:255] or "upload"
        limit = max(config.max_bytes(k) for k in allowed)
        if size is not None and size > limit:
            raise _too_large(shown, size, limit)
        total += size or 0
    if total > budget:
        raise UploadRefused(
            f"一次上传的文件合计不能超过 {filesizeformat(budget)}（本次 {filesizeformat(total)}），请分批或压缩后重新提交。",
            f"At most {budget:,} bytes of files per report ({total:,} sent).",
        )


def upload_check(*, name: str, data: bytes | IO[bytes], allowed: set[str] | frozenset[str]) -> CheckedUpload:
    """Check an uploaded file by its content; raises `UploadRefused` (see the module doc)."""
    shown = Path(name.replace("\\", "/")).name[:255] or "upload"
    limit = max(config.max_bytes(k) for k in allowed)
    content = _read(data, limit)
    if not content:
        raise UploadRefused(f"文件“{shown}”是空的。", f"{shown} is empty.")
    kind = sniff(content[:64])
    accepted = "、".join(LABEL[k] for k in sorted(allowed))
    if kind is None or kind not in allowed:
        raise UploadRefused(
            f"文件“{shown}”的内容不是可接受的类型（可接受：{accepted}）；是否接受由文件内容决定，与文件名无关。",
            f"The content of {shown} is not an accepted type; the file name does not decide.",
        )
    if len(content) > config.max_bytes(kind):
        size: int | None = len(content)
        if len(content) > limit and not isinstance(data, bytes | bytearray | memoryview):
            known = getattr(data, "size", None)  # read up to the limit only: an upload knows its size
            size = known if isinstance(known, int) else None
        raise _too_large(shown, size, config.max_bytes(kind), LABEL[kind])
    checks = {"pdf": _pdf_ok, "mp4": _video_ok, "mov": _video_ok}
    ok = _image_ok(content, kind) if kind in IMAGES else checks[kind](content)
    if not ok:
        raise UploadRefused(
            f"文件“{shown}”已损坏或不是真正的{LABEL[kind]}。",
            f"{shown} is damaged or not a real {kind} file.",
        )
    scan = _scan(content, shown)
    return CheckedUpload(
        name=shown, file_kind=kind, size=len(content), sha256=hashlib.sha256(content).hexdigest(), scan=scan,
        data=content,
    )  # fmt: skip


def attachment_store(*, upload: CheckedUpload) -> StoredFile:
    """Write a checked file under its content hash (once per content); returns where."""
    relative = f"{upload.sha256[:2]}/{upload.sha256}{EXTENSION[upload.file_kind]}"
    final = attachments_dir() / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.exists():
        handle, temp = tempfile.mkstemp(prefix=".attachment-", dir=final.parent)
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(upload.data)
            Path(temp).chmod(0o600)
            Path(temp).replace(final)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return StoredFile(
        sha256=upload.sha256, size=upload.size, file_kind=upload.file_kind, stored_path=relative
    )


def attachment_path(stored_path: str) -> Path:
    """The stored file (refuses a path that would leave the attachments directory)."""
    root = attachments_dir().resolve()
    path = (root / stored_path).resolve()
    if root not in path.parents:
        raise UploadRefused("bad stored path")
    return path
