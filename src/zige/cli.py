"""The `zige` command line."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from zige.cli_common import err, fail, out, parse_day, progress_bar, today
from zige.engine.labels import KIND_ZH, REASON_ZH, STATUS_ZH


def parse_region(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A click callback for a 6-digit 行政区划 code (附件2: 《全国行政区划代码》 6 位数字代码); empty
    is the default (the province's own code)."""
    code = (value or "").strip()
    if code and not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise click.BadParameter(f"{value!r} is not a 6-digit 行政区划 code (e.g. 140100 for 太原市)")
    return code


@click.group()
@click.version_option(package_name="zige")
def main() -> None:
    """zige (资格): pension-recipient eligibility certification by data comparison."""


def _run_certify(
    *,
    roster: Path,
    feeds: Path,
    as_of: date,
    out_dir: Path,
    home_province: str,
    insured_region: str,
    kinds_config: Path | None = None,
    engine: str = "duckdb",
) -> None:
    from zige.engine.kinds import BUILTIN_KINDS, KindsConfigError, load_custom_kinds
    from zige.engine.pipeline import CertifyConfig, CertifyError, certify

    kinds = BUILTIN_KINDS
    if kinds_config is not None:
        try:
            kinds = BUILTIN_KINDS + load_custom_kinds(kinds_config)
        except KindsConfigError as exc:
            fail(str(exc))
    config = CertifyConfig(
        roster=roster, feeds=feeds, as_of=as_of, out=out_dir, home_province=home_province,
        insured_region_code=insured_region, kinds=kinds,
    )  # fmt: skip
    try:
        with progress_bar("certify") as report:
            if engine == "spark":  # issue 6: the same SQL on Apache Spark (docs/national.md)
                from zige.engine import spark

                result = spark.certify(config, progress=report)
            else:
                result = certify(config, progress=report)
    except CertifyError as exc:
        fail(str(exc))
    _print_summary(result.summary, out_dir)


def _print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    table = Table(title=f"zige certify · as of {summary['as_of']}", title_justify="left")
    for header, justify in (("status", "left"), ("状态", "left"), ("reason", "left"), ("原因", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    table.add_column("recipients", justify="right")
    by_status: dict[str, list[tuple[str, int]]] = {code: [] for code in summary["status"]}
    for key, count in summary["status_reason"].items():
        status, reason = key.split("/", 1)
        by_status[status].append((reason, count))
    for status, total in summary["status"].items():
        table.add_row(status, STATUS_ZH[status], "", "", f"{total:,}", style="bold")
        for reason, count in by_status[status]:
            table.add_row("", "", reason, REASON_ZH.get(reason) or KIND_ZH.get(reason, reason), f"{count:,}")
    table.add_row("total", "合计", "", "", f"{summary['recipients']:,}", style="bold")
    out.print(table)
    totals = summary["totals"]
    out.print(
        f"files: {len(summary['files'])}  rows read {totals['rows_read']:,}  used {totals['rows_used']:,}  "
        f"rejected {totals['rows_rejected']:,}  duplicates {totals['duplicate_rows']:,}  "
        f"reconciled: {'yes' if summary['reconciles'] else 'NO'}",
        highlight=False,
    )
    actions = summary["actions"]
    out.print(
        "actions: "
        + (
            ", ".join(
                f"{a} {v['count']:,} ({Decimal(str(v['amount'])):,.2f} yuan)" for a, v in actions.items()
            )
            or "none"
        ),
        highlight=False,
    )
    reminders = summary["reminders"]
    channels = ", ".join(f"{channel} {n:,}" for channel, n in reminders["channel"].items())
    out.print(f"reminders: {reminders['total']:,}" + (f" ({channels})" if channels else ""), highlight=False)
    out.print(f"outputs: {out_dir}", highlight=False)


@main.command()
@click.option(
    "--roster", type=click.Path(path_type=Path), required=True, help="待遇领取人员名册 (CSV/XLSX/XLS/Parquet)"
)
@click.option("--feeds", type=click.Path(path_type=Path), required=True, help="directory of feed files")
@click.option("--as-of", "as_of", required=True, callback=parse_day, help="比对基准日 YYYY-MM-DD")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="output directory")
@click.option("--home-province", default="14", show_default=True, help="2-digit code of the home province")
@click.option(
    "--insured-region",
    default="",
    callback=parse_region,
    help="附件2 参保地行政区划, a 6-digit code (default: <province>0000)",
)
@click.option(
    "--kinds-config",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML file declaring custom feed kinds",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="SQL engine: DuckDB in-process, or Apache Spark (local[2] unless SPARK_MASTER / spark-submit)",
)
def certify(
    roster: Path,
    feeds: Path,
    as_of: date,
    out_dir: Path,
    home_province: str,
    insured_region: str,
    kinds_config: Path | None,
    engine: str,
) -> None:
    """Certify every recipient of ROSTER against the feed files in FEEDS as of a date."""
    if not (len(home_province) == 2 and home_province.isdigit()):
        fail(f"--home-province must be two digits, not {home_province!r}")
    _run_certify(
        roster=roster, feeds=feeds, as_of=as_of, out_dir=out_dir, home_province=home_province,
        insured_region=insured_region, kinds_config=kinds_config, engine=engine,
    )  # fmt: skip


@main.command()
@click.option("--recipients", default=50_000, show_default=True, help="size of the synthetic province")
@click.option("--as-of", "as_of", callback=parse_day, help="比对基准日 (default: today, China Standard Time)")
@click.option(
    "--dir", "work_dir", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True
)
@click.option("--seed", default=2018, show_default=True)
@click.option(
    "--serve/--no-serve", "serve_site", default=True, show_default=True, help="serve the web site after"
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def demo(
    ctx: click.Context,
    recipients: int,
    as_of: date | None,
    work_dir: Path,
    seed: int,
    serve_site: bool,
    port: int,
) -> None:
    """The whole system on a synthetic province: generate it, certify it as files, load it into the
    system of record (imports, a run), create demo users and serve the site on 127.0.0.1."""
    from zige.demo import generate_province

    as_of = as_of or today()
    if as_of > today():  # the system of record runs as of today or earlier (run_submit)
        fail(f"--as-of {as_of.isoformat()} is after today ({today().isoformat()}, China Standard Time)")

    with err.status(f"generating a province of {recipients:,} recipients …"):
        province = generate_province(work_dir / "input", recipients=recipients, as_of=as_of, seed=seed)
    feed_files = [p for p in province.files if p != province.roster]
    out.print(
        f"input: {province.roster} and {len(feed_files)} feed files in {province.feeds}", highlight=False
    )
    out_dir = work_dir / "output"
    _run_certify(
        roster=province.roster, feeds=province.feeds, as_of=as_of, out_dir=out_dir,
        home_province="14", insured_region="",
    )  # fmt: skip
    out.print(
        "batch outputs: results.csv, actions.csv, rejects.csv, reminders.csv, summary.json, "
        f"suggested_matches.csv, pending/<unit_no>.xlsx (附件1), out_of_province.xlsx (附件2) in {out_dir}",
        highlight=False,
    )
    accounts = _load_demo_system(province.roster, feed_files, as_of)
    table = Table(title="demo users (passwords are shown this once)", title_justify="left")
    for column in ("username", "role", "unit", "password"):
        table.add_column(column)
    for account in accounts:
        table.add_row(account.username, account.role, account.unit_no, account.password)
    out.print(table)
    if serve_site:
        from zige.cli_admin import serve

        out.print(f"open http://127.0.0.1:{port}/ and log in with one of the users above", highlight=False)
        ctx.invoke(serve, host="127.0.0.1", port=port, workers=2, timeout=600, grace=10.0)


def _load_demo_system(roster: Path, feed_files: list[Path], as_of: date) -> list[Any]:
    from zige.web.bootstrap import setup_django

    setup_django()
    from django.conf import settings
    from django.utils import timezone

    from zige.demo_system import certify_province, demo_accounts, import_province

    with progress_bar("load the system of record") as report:
        batches = import_province(roster=roster, feed_files=feed_files, now=timezone.now(), progress=report)
        run = certify_province(as_of=as_of, now=timezone.now(), progress=report)
    failed = [b for b in batches if b.status == "failed"]
    out.print(
        f"system of record ({settings.DATA_DIR}): {len(batches)} imports"
        + (f", {len(failed)} failed" if failed else "")
        + f"; run #{run.pk} as of {run.as_of}: {run.status}, {run.recipients:,} recipients",
        highlight=False,
    )
    if run.status != "succeeded":
        fail(f"the demo run failed: {run.message}")
    return demo_accounts(run=run, now=timezone.now())


def _register_subcommands() -> None:
    from zige import cli_admin, cli_records

    cli_records.register(main)
    cli_records.register_decisions(main)  # decision retention: zige decisions prune / export
    cli_admin.register(main)
    from zige.notifications import cli as cli_notifications  # issue #5

    cli_notifications.register(main)
    from zige.verification import cli as cli_verification  # issue #4: zige tasks sweep

    cli_verification.register(main)
    from zige.benefits import cli as cli_benefits  # issue #4: zige payments

    cli_benefits.register(main)
    from zige.ledger import cli as cli_ledger  # issue #4: zige ledger attachment2 / summary

    cli_ledger.register(main)
    from zige.bench.cli import bench  # issue #6: zige bench

    main.add_command(bench)


_register_subcommands()
