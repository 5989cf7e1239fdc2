"""Evidence uploads (zige.verification.uploads): checked by content, never by name or browser type."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from PIL import Image

from zige.verification.uploads import (
    DOCUMENTS,
    EVERYTHING,
    IMAGES,
    VIDEOS,
    UploadRefused,
    attachment_path,
    attachment_store,
    sniff,
    upload_check,
)


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 120, 40))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def mp4_bytes(brand: bytes = b"isom") -> bytes:
    """A minimal ISO-BMFF file: an `ftyp` box, a `free` box and an empty `mdat` box."""
    ftyp = (24).to_bytes(4, "big") + b"ftyp" + brand + (512).to_bytes(4, "big") + b"isomiso2"
    free = (8).to_bytes(4, "big") + b"free"
    mdat = (16).to_bytes(4, "big") + b"mdat" + b"\x00" * 8
    return ftyp + free + mdat


PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"

GOOD = [
    ("photo.jpg", lambda: image_bytes("JPEG"), "jpeg"),
    ("photo.png", lambda: image_bytes("PNG"), "png"),
    ("photo.webp", lambda: image_bytes("WEBP"), "webp"),
    ("visit.mp4", lambda: mp4_bytes(), "mp4"),
    ("visit.mov", lambda: mp4_bytes(b"qt  "), "mov"),
    ("confirm.pdf", lambda: PDF, "pdf"),
    # the name does not decide: a real PNG called .pdf is a PNG
    ("scan.pdf", lambda: image_bytes("PNG"), "png"),
]


@pytest.mark.parametrize(("name", "make", "kind"), GOOD, ids=[g[0] + "-" + g[2] for g in GOOD])
def test_real_files_are_accepted_by_their_content(name: str, make, kind: str) -> None:  # type: ignore[no-untyped-def]
    data = make()
    checked = upload_check(name=name, data=data, allowed=EVERYTHING)
    assert checked.file_kind == kind
    assert checked.size == len(data)
    assert checked.scan == "not_scanned"
    assert len(checked.sha256) == 64


def test_a_file_object_is_read_like_bytes() -> None:
    data = image_bytes("JPEG")
    checked = upload_check(name="a.jpg", data=io.BytesIO(data), allowed=IMAGES)
    assert checked.file_kind == "jpeg" and checked.data == data


PNG = image_bytes("PNG", (64, 64), noise=True)
BAD = [
    (
        "windows program renamed",
        "photo.jpg",
        b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode",
    ),
    ("html renamed", "photo.jpg", b"<!DOCTYPE html><html><script>alert(1)</script></html>"),
    ("svg renamed", "photo.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("png header then garbage", "photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
    ("jpeg header then garbage", "photo.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4),
    ("truncated png", "photo.png", PNG[: len(PNG) // 2]),
    ("zip renamed", "visit.mp4", b"PK\x03\x04" + b"\x00" * 100),
    ("ftyp of an unknown brand", "visit.mp4", mp4_bytes(b"zzzz")),
    (
        "ftyp then binary junk",
        "visit.mp4",
        mp4_bytes()[:24] + b"\x00\x00\x00\x10\x01\x02\x03\x04" + b"\x00" * 8,
    ),
    ("ftyp box larger than the file", "visit.mp4", (4096).to_bytes(4, "big") + b"ftypisom" + b"\x00" * 20),
    # a valid ftyp box in front of anything else is not a video: what follows must be ISO-BMFF
    # boxes, and a video has its media (mdat) or its description (moov)
    ("ftyp then a web page", "visit.mp4", mp4_bytes()[:24] + b"<script>alert(1)</script>" * 40),
    ("ftyp then text", "visit.mov", mp4_bytes(b"qt  ")[:24] + b"this is not a video at all, just words"),
    ("ftyp alone", "visit.mp4", mp4_bytes()[:24]),
    ("ftyp and free only", "visit.mp4", mp4_bytes()[:32]),
    ("pdf without an end", "confirm.pdf", b"%PDF-1.4\n" + b"A" * 100),
    ("empty", "photo.jpg", b""),
]


@pytest.mark.parametrize(("what", "name", "data"), BAD, ids=[b[0] for b in BAD])
def test_disguised_and_broken_files_are_refused(what: str, name: str, data: bytes) -> None:
    with pytest.raises(UploadRefused):
        upload_check(name=name, data=data, allowed=EVERYTHING)


def test_a_broken_file_is_refused_in_plain_chinese() -> None:
    """The message reads as Chinese does: no space between the format and its noun."""
    with pytest.raises(UploadRefused) as refused:
        upload_check(name="photo.jpg", data=b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, allowed=EVERYTHING)
    assert refused.value.message == "文件“photo.jpg”已损坏或不是真正的JPEG图片。"


def test_a_kind_outside_the_allowed_set_is_refused() -> None:
    with pytest.raises(UploadRefused, match="不是可接受的类型") as refused:
        upload_check(name="confirm.pdf", data=PDF, allowed=IMAGES | VIDEOS)
    # the officer's message is Chinese only; the English is the detail for support staff
    assert "not an accepted type" not in str(refused.value)
    assert "not an accepted type" in refused.value.detail
    assert upload_check(name="confirm.pdf", data=PDF, allowed=DOCUMENTS).file_kind == "pdf"


def test_size_limits_per_kind(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES = 2000
    settings.ZIGE_UPLOAD_MAX_PDF_BYTES = 10_000
    big = image_bytes("PNG", (64, 64), noise=True)
    assert len(big) > 2000
    with pytest.raises(UploadRefused, match="过大"):
        upload_check(name="big.png", data=big, allowed=EVERYTHING)
    with pytest.raises(UploadRefused, match="过大"):  # also as a stream: never read past the limit
        upload_check(name="big.png", data=io.BytesIO(big), allowed=IMAGES)
    assert upload_check(name="small.pdf", data=PDF, allowed=EVERYTHING).file_kind == "pdf"


def infected(path: Path) -> bool:
    return b"EICAR" not in path.read_bytes()


def broken(path: Path) -> bool:
    raise RuntimeError("scanner down")


def test_virus_scan_hook_callable(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ZIGE_VIRUS_SCAN = "tests.unit.test_verification_uploads:infected"
    assert upload_check(name="a.pdf", data=PDF, allowed=EVERYTHING).scan == "clean"
    with pytest.raises(UploadRefused, match="病毒"):
        upload_check(name="a.pdf", data=PDF.replace(b"Catalog", b"EICAR"), allowed=EVERYTHING)
    settings.ZIGE_VIRUS_SCAN = "tests.unit.test_verification_uploads:broken"
    with pytest.raises(UploadRefused, match="扫描失败"):
        upload_check(name="a.pdf", data=PDF, allowed=EVERYTHING)


@pytest.mark.parametrize(("status", "outcome"), [(0, "clean"), (1, "infected"), (2, "failed")])
def test_virus_scan_hook_command(settings, status: int, outcome: str) -> None:  # type: ignore[no-untyped-def]
    settings.ZIGE_VIRUS_SCAN = f"sh -c 'test -s \"$0\" && exit {status}' {{path}}"
    if outcome == "clean":
        assert upload_check(name="a.pdf", data=PDF, allowed=EVERYTHING).scan == "clean"
    else:
        with pytest.raises(UploadRefused):
            upload_check(name="a.pdf", data=PDF, allowed=EVERYTHING)


def test_stored_by_content_hash_outside_the_web_root(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path
    checked = upload_check(name="x.jpg", data=image_bytes("JPEG"), allowed=IMAGES)
    stored = attachment_store(upload=checked)
    again = attachment_store(upload=checked)
    assert stored == again
    path = attachment_path(stored.stored_path)
    assert path == tmp_path / "attachments" / checked.sha256[:2] / f"{checked.sha256}.jpg"
    assert path.read_bytes() == checked.data
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(UploadRefused):
        attachment_path("../../etc/passwd")


def test_sniff_reads_only_the_start() -> None:
    assert sniff(b"\xff\xd8\xff\xdb") == "jpeg"
    assert sniff(b"GIF89a") is None


def test_the_precheck_counts_files_and_bytes_from_their_sizes_alone(settings: object) -> None:
    from zige.verification.uploads import EVERYTHING, IMAGES, uploads_precheck

    settings.ZIGE_UPLOAD_MAX_FILES = 3  # type: ignore[attr-defined]
    settings.ZIGE_UPLOAD_MAX_TOTAL_BYTES = 100  # type: ignore[attr-defined]
    uploads_precheck(files=[("a.jpg", 40, IMAGES), ("b.pdf", 60, EVERYTHING), ("c", None, EVERYTHING)])
    with pytest.raises(UploadRefused, match="一次最多上传 3 个文件（本次 4 个）"):
        uploads_precheck(files=[("x.jpg", 1, IMAGES)] * 4)
    with pytest.raises(UploadRefused, match="合计不能超过"):
        uploads_precheck(files=[("a.jpg", 40, IMAGES), ("b.pdf", 61, EVERYTHING)])
    settings.ZIGE_UPLOAD_MAX_TOTAL_BYTES = 10**9  # type: ignore[attr-defined]
    settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES = 50  # type: ignore[attr-defined]
    with pytest.raises(UploadRefused, match=r"“a\.jpg”过大"):
        uploads_precheck(files=[("dir/a.jpg", 51, IMAGES)])
    uploads_precheck(files=[("a.pdf", 51, EVERYTHING)])  # a PDF or a video may be larger


def test_evidence_sizes_read_as_the_import_pages_say_them(settings: object) -> None:
    """A refused evidence file was counted in 字节 with a bare limit (3,072 字节，上限 2,048) and a
    report's total in MB however small (9.53674e-05 MB): every size now reads as the import
    pages say it (Django's filesizeformat: 字节 / KB / MB / GB), the exact bytes in the English
    detail only."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from zige.verification.uploads import uploads_precheck

    settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES = 2048  # type: ignore[attr-defined]
    with pytest.raises(UploadRefused) as refused:
        uploads_precheck(files=[("dir/a.jpg", 3072, IMAGES)])
    assert refused.value.message == "文件“a.jpg”过大（3.0\xa0KB，上限 2.0\xa0KB）。"
    assert "3,072 bytes" in refused.value.detail and "2,048" in refused.value.detail

    settings.ZIGE_UPLOAD_MAX_TOTAL_BYTES = 100  # type: ignore[attr-defined]
    with pytest.raises(UploadRefused) as refused:
        uploads_precheck(files=[("a.jpg", 60, IMAGES), ("b.jpg", 61, IMAGES)])
    assert refused.value.message.startswith("一次上传的文件合计不能超过 100\xa0字节（本次 121\xa0字节）")
    assert "100 bytes" in refused.value.detail and "121 sent" in refused.value.detail
    settings.ZIGE_UPLOAD_MAX_TOTAL_BYTES = 2 * 1024 * 1024  # type: ignore[attr-defined]
    settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES = 10**9  # type: ignore[attr-defined]
    with pytest.raises(UploadRefused) as refused:
        uploads_precheck(files=[("a.jpg", 3 * 1024 * 1024, IMAGES)])
    assert refused.value.message.startswith("一次上传的文件合计不能超过 2.0\xa0MB（本次 3.0\xa0MB）")

    noise = Image.frombytes("RGB", (64, 64), random.Random(6).randbytes(64 * 64 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    big = buffer.getvalue()
    settings.ZIGE_UPLOAD_MAX_IMAGE_BYTES = 2048  # type: ignore[attr-defined]
    shown = f"{len(big) / 1024:.1f}\xa0KB"
    with pytest.raises(UploadRefused) as refused:
        upload_check(name="big.png", data=big, allowed=IMAGES)
    assert refused.value.message == f"文件“big.png”过大（{shown}，PNG图片上限 2.0\xa0KB）。"
    assert f"{len(big):,} bytes" in refused.value.detail
    # an upload is read only up to the limit: its size is the upload's own, not the bytes read
    upload = SimpleUploadedFile("big.png", big, content_type="image/png")
    with pytest.raises(UploadRefused) as refused:
        upload_check(name="big.png", data=upload, allowed=IMAGES)
    assert refused.value.message == f"文件“big.png”过大（{shown}，PNG图片上限 2.0\xa0KB）。"
    with pytest.raises(UploadRefused) as refused:  # a stream of unknown size
        upload_check(name="big.png", data=io.BytesIO(big), allowed=IMAGES)
    assert refused.value.message == "文件“big.png”过大（超过PNG图片上限 2.0\xa0KB）。"
    assert "字节" not in refused.value.message
