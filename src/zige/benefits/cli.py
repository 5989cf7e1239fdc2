"""`zige payments export`, `zige payments confirm BATCH`, `zige payments reexport BATCH`,
`zige payments sweep [--dry-run]`."""

from __future__ import annotations

import click

from zige.cli_common import fail, out


def _setup() -> None:
    from zige.web.bootstrap import setup_django

    setup_django()


def _user(username: str | None) -> object | None:
    if not username:
        return None
    from zige.accounts.models import User

    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        fail(f"no active user {username!r}")
    return user


def register(main: click.Group) -> None:
    @main.group(name="payments")
    def payments() -> None:
        """Payment actions: export approved actions to the payment system, confirm batches."""

    @payments.command(name="export")
    @click.option("--user", "username", default=None, help="bureau user to record as the exporter")
    def export(username: str | None) -> None:
        """Put every approved, not yet exported action into a new batch (xlsx, csv, .sha256)."""
        _setup()
        from django.utils import timezone

        from zige.benefits.services import BenefitsError, batch_paths, export_batch_create

        try:
            batch = export_batch_create(user=_user(username), now=timezone.now())
        except BenefitsError as exc:
            fail(str(exc))
        if batch is None:
            out.print("nothing to export: no approved action waits for export", highlight=False)
            return
        paths = batch_paths(batch)
        out.print(
            f"batch #{batch.pk}: {batch.count:,} actions, total {batch.total_amount:,.2f} yuan\n"
            f"  {paths['xlsx']}  sha256 {batch.xlsx_sha256}\n  {paths['csv']}  sha256 {batch.csv_sha256}",
            highlight=False,
            soft_wrap=True,
        )

    @payments.command(name="confirm")
    @click.argument("batch_id", type=int)
    @click.option("--ref", default="", help="the payment system's acknowledgement (回执号)")
    @click.option("--user", "username", default=None, help="bureau user to record as the confirmer")
    def confirm(batch_id: int, ref: str, username: str | None) -> None:
        """The payment system took BATCH: the batch and its actions are confirmed."""
        _setup()
        from django.utils import timezone

        from zige.benefits.services import BenefitsError, export_batch_confirm

        try:
            batch = export_batch_confirm(batch_id=batch_id, user=_user(username), ref=ref, now=timezone.now())
        except BenefitsError as exc:
            fail(str(exc))
        out.print(f"batch #{batch.pk} confirmed: {batch.count:,} actions", highlight=False)

    @payments.command(name="reexport")
    @click.argument("batch_id", type=int)
    @click.option("--reason", required=True, help="why the files are written again (audited)")
    @click.option("--user", "username", default=None, help="bureau user to record")
    def reexport(batch_id: int, reason: str, username: str | None) -> None:
        """Write BATCH's files again: the same bytes, checked against the recorded SHA-256."""
        _setup()
        from django.utils import timezone

        from zige.benefits.services import BenefitsError, export_batch_reexport

        try:
            batch = export_batch_reexport(
                batch_id=batch_id, user=_user(username), reason=reason, now=timezone.now()
            )
        except BenefitsError as exc:
            fail(str(exc))
        out.print(
            f"batch #{batch.pk} written again, sha256 unchanged (csv {batch.csv_sha256})", highlight=False
        )

    @payments.command(name="sweep")
    @click.option("--dry-run", is_flag=True, help="only list the files that would be removed")
    @click.option(
        "--user", "username", default=None, help="bureau user to record as the one who removed them"
    )
    def sweep(dry_run: bool, username: str | None) -> None:
        """Remove export files no batch accounts for (left by a killed export; full ID numbers),
        older than an hour. Files of recorded batches are never touched. Audited."""
        _setup()
        from django.utils import timezone

        from zige.benefits.services import BenefitsError, export_orphans_sweep

        try:
            files = export_orphans_sweep(user=_user(username), now=timezone.now(), dry_run=dry_run)
        except BenefitsError as exc:
            fail(str(exc))
        if not files:
            out.print("no export file without a batch", highlight=False)
            return
        verb = "would remove" if dry_run else "removed"
        for f in files:
            kind = "temporary" if f.temporary else "no batch"
            out.print(f"{verb} {f.path}  ({kind}, {f.size:,} bytes)", highlight=False, soft_wrap=True)
        out.print(f"{len(files)} file(s) {verb}", highlight=False)
