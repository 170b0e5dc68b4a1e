"""`ingest-platform`: the command line for demos, the sandbox and CI.

Every command that runs Dagster work uses the repository's instance (``dagster.yaml`` at the
root, SQLite under ``data/dagster``) unless DAGSTER_HOME points elsewhere, so what the demo
runs is what the UI shows afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ingest_platform.core import settings


def use_project_instance() -> str:
    """Point Dagster at the project's instance (unless DAGSTER_HOME is set) and return it.

    The instance config uses paths relative to its folder, so the process also moves there. A
    folder without one (an installed wheel run from anywhere) gets the packaged default: the
    embedded SQLite instance.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or settings.project_root()).resolve()
    config = home / "dagster.yaml"
    if not config.exists() and settings.PACKAGED_INSTANCE_CONFIG.is_file():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.PACKAGED_INSTANCE_CONFIG, config)
    os.environ["DAGSTER_HOME"] = str(home)
    os.chdir(home)
    return str(home)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ingest_platform import demo

    home = use_project_instance()
    return demo.run_demo(dagster_home=home, out=sys.stdout)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    import threading

    from ingest_platform.sandbox import FaultPlan, Sandbox

    try:
        faults = FaultPlan.from_file(args.faults) if args.faults else None
        sandbox = Sandbox(
            seed=args.seed,
            as_of=args.as_of,
            host=args.host,
            http_port=args.http_port,
            kraken_port=args.kraken_port,
            kraken_rate=args.kraken_rate,
            faults=faults,
        )
        sandbox.start()
    except OSError as exc:  # the port is taken, the host cannot be bound
        print(
            f"ingest-platform sandbox: cannot listen on {args.host} (HTTP port {args.http_port},"
            f" Kraken port {args.kraken_port}): {exc.strerror or exc}; pick free ports with "
            "--http-port / --kraken-port (0: any free port)",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:  # a bad --faults file or --as-of (FaultPlanError is one)
        print(f"ingest-platform sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        print("Sandbox running (threaded HTTP server + asyncio WebSocket server). Ctrl-C stops it.")
        print(f"  HTTP:    {sandbox.url}   (control: /_sandbox/faults, /_sandbox/counters)")
        for provider, url in sandbox.http.base_urls().items():
            print(f"    {provider:<14} {url}")
        print(f"  Kraken:  {sandbox.kraken_url}")
        print("Point the platform at it:")
        for name, value in sandbox.env().items():
            print(f"  export {name}={value}")
        sys.stdout.flush()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


def _cmd_kraken_replay(args: argparse.Namespace) -> int:
    from ingest_platform.streaming.kraken.log import replay

    root = args.root or replay.default_log_root()
    return replay.run_replay(root, args.days, args.symbols, as_json=args.json, out=sys.stdout)


def _cmd_kraken_tail(args: argparse.Namespace) -> int:
    import asyncio

    from ingest_platform.streaming.kraken import consume
    from ingest_platform.streaming.kraken.resources import NATS_URL_ENV

    url = args.url or settings.env(NATS_URL_ENV) or "nats://127.0.0.1:4222"
    rebuilder = consume.BookRebuilder()
    try:
        result = asyncio.run(
            consume.tail(
                url,
                pair=args.pair,
                last=args.last,
                from_start=args.from_start,
                stream=args.stream,
                max_messages=args.count,
                idle_seconds=args.idle,
                rebuilder=rebuilder,
                on_event=consume.printer(rebuilder, sys.stdout),
            )
        )
    except consume.ChecksumMismatch as exc:
        print(f"kraken-tail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # unreachable server, no such stream: one line, exit 2
        from ingest_platform.streaming.kraken.fanout.bus import redact_url

        reason = f"{type(exc).__name__}: {exc}".replace(url, redact_url(url))
        print(
            f"kraken-tail: cannot read {args.stream} at {redact_url(url)}: {reason}",
            file=sys.stderr,
        )
        return 2
    totals = rebuilder.totals()
    print(
        f"kraken-tail: {result.received} messages, {totals['verified']} book events re-verified "
        f"({totals['snapshots']} snapshots), {totals['gaps']} seq gaps, {totals['epochs']} epoch "
        f"changes, {totals['waiting']} waiting for a snapshot, {totals['duplicates']} duplicates",
        file=sys.stderr,
    )
    return 0


KRAKEN_TAIL_EXIT_CODES = """\
exit codes:
  0  stopped (--count reached, --idle passed, Ctrl-C) with every book event re-verified
  1  a checksum did not re-verify; stderr names the pair, epoch and seq
  2  cannot run: the server is unreachable or the stream does not exist
"""


KRAKEN_REPLAY_EXIT_CODES = """\
exit codes:
  0  every checksum verified: the log (or the days and pairs asked for) replays cleanly
  1  problems found: checksum mismatches, missing rows (seq holes), updates while a book was
     out of sync, book restarts without a recorded gap, top-of-book rows that differ
  2  cannot run: bad arguments, a day with no log (or no book rows at all), or a corrupt or
     truncated segment; one line on stderr says which
"""


def _utc_day(text: str) -> str:
    """A ``--day`` value: a UTC calendar day, ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD day: {text!r}") from None


def _cmd_refresh_constituents(args: argparse.Namespace) -> int:
    import pandas as pd

    from ingest_platform.core.http import HttpClient
    from ingest_platform.reference import membership, membership_files, universe
    from ingest_platform.reference.sources.wikipedia import (
        fetch_page,
        parse_changes,
        parse_constituents,
    )

    folder = settings.reference_dir()
    path = folder / universe.CONSTITUENTS_FILE
    changes_path = folder / membership_files.CHANGES_FILE
    current = pd.read_csv(path, dtype=str, keep_default_na=False)
    html = fetch_page(HttpClient("wikipedia"), args.base_url)
    new, diff = universe.refresh_constituents(current, parse_constituents(html))
    shipped = membership_files.load_changes(changes_path) if changes_path.exists() else []
    changes, change_lines = membership_files.refresh_changes(
        shipped, parse_changes(html), changes_path
    )
    print(f"{len(current)} -> {len(new)} constituents ({args.base_url})")
    for line in diff.lines():
        print(f"  {line}")
    print(f"{len(shipped)} -> {len(changes)} membership changes since {membership.HISTORY_START}")
    for line in change_lines:
        print(f"  {line}")
    try:  # both files must tell one story before either is written
        membership.reconcile(
            dict(zip(new["symbol"], new["name"], strict=True)),
            changes,
            membership_files.load_symbol_changes(folder / membership_files.SYMBOL_CHANGES_FILE),
        )
    except membership_files.MembershipFileError as exc:
        print(
            f"ingest-platform refresh-constituents: refused, nothing written: {exc} (a ticker "
            f"change belongs in {membership_files.SYMBOL_CHANGES_FILE})",
            file=sys.stderr,
        )
        return 1
    if args.dry_run:
        return 0
    if diff.changed:
        temp = path.with_name(f".{path.name}.tmp")
        new.to_csv(temp, index=False)
        temp.replace(path)  # atomic: a half-written snapshot would break every run
        print(f"wrote {path}; review and commit the diff")
    if any(not line.startswith("=") for line in change_lines):
        membership_files.write_changes(changes, changes_path)
        print(f"wrote {changes_path}; review and commit the diff")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from ingest_platform.domains import build_definitions, domains_for
    from ingest_platform.quality.shared import runner

    use_project_instance()
    # Only the domains the selection reaches are imported and built (`domains_for`).
    defs = build_definitions(domains_for(args.select))
    with DagsterInstance.get() as instance:
        return runner.main(
            defs,
            instance,
            select=args.select,
            partition=args.partition,
            partition_range=args.partition_range,
            fail_on=args.fail_on,
            junit_xml=args.junit_xml,
            json_path=args.json,
        )


def _cmd_status(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from ingest_platform.core.lake import ParquetLake
    from ingest_platform.domains import build_definitions
    from ingest_platform.publish import status

    use_project_instance()
    defs = build_definitions()
    lake = (defs.resources or {}).get("lake")
    if not isinstance(lake, ParquetLake):
        lake = ParquetLake(root=settings.lake_root())
    with DagsterInstance.get() as instance:
        if args.format == "prometheus":
            from ingest_platform.operations import status_metrics

            return status_metrics.main(defs, instance, lake, out=sys.stdout, output=args.output)
        json_out = args.json or args.format == "json"
        return status.main(defs, instance, lake, json_out=json_out, out=sys.stdout)


def _cmd_audit(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from ingest_platform.core.lake import ParquetLake
    from ingest_platform.domains import build_definitions
    from ingest_platform.publish import audit_command
    from ingest_platform.publish.resources import Warehouse

    use_project_instance()
    defs = build_definitions()
    resources = defs.resources or {}
    lake = resources.get("lake")
    if not isinstance(lake, ParquetLake):
        lake = ParquetLake(root=settings.lake_root())
    warehouse = resources.get("warehouse")
    # Resolved as a run would resolve it: the URL may come from the environment (EnvVar).
    engine = (
        warehouse.process_config_and_initialize().engine()
        if isinstance(warehouse, Warehouse)
        else None
    )
    with DagsterInstance.get() as instance:
        return audit_command.main(
            defs,
            instance,
            lake,
            engine,
            as_json=args.json,
            fix=args.repair,
            datasets=args.datasets or (),
        )


def _iso_date(text: str) -> str:
    """An argparse type: a YYYY-MM-DD date, or a one-line error naming the value."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None
    return text


class _Parser(argparse.ArgumentParser):
    """argparse with a per-command exit code for usage errors: `check` promises 2 for "a check
    failed", so its usage errors must not exit with argparse's usual 2."""

    def __init__(self, *args: Any, usage_exit_code: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_exit_code = usage_exit_code

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit_code, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ingest-platform",
        description="Financial ground-truth ingestion on Dagster: demo, sandbox and CI tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the main job on embedded defaults (SQLite instance, local lake, sandbox sources)",
    )
    demo.set_defaults(func=_cmd_demo)

    sandbox = commands.add_parser(
        "sandbox", help="serve the local simulator of every source in the foreground"
    )
    sandbox.add_argument("--seed", type=int, default=7, help="all data derives from it")
    sandbox.add_argument(
        "--as-of",
        default=None,
        type=_iso_date,
        help="last date with data, YYYY-MM-DD (default: today)",
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--http-port", type=int, default=8765)
    sandbox.add_argument("--kraken-port", type=int, default=8766)
    sandbox.add_argument("--kraken-rate", type=float, default=50.0, help="book updates/s per pair")
    sandbox.add_argument("--faults", default=None, help='JSON file: {"faults": [...]}')
    sandbox.set_defaults(func=_cmd_sandbox)

    refresh = commands.add_parser(
        "refresh-constituents",
        help="update data/reference/sp500_constituents.csv and sp500_membership_changes.csv "
        "from Wikipedia's constituents and changes tables (refused unless they reconcile)",
    )
    refresh.add_argument(
        "--base-url", default="https://en.wikipedia.org", help="or a sandbox's /wikipedia URL"
    )
    refresh.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    refresh.set_defaults(func=_cmd_refresh_constituents)

    check = commands.add_parser(
        "check",
        usage_exit_code=1,  # quality.shared.runner.EXIT_CANNOT_RUN (not imported: it loads Dagster)
        help="run the asset checks against the lake (no materialization), for CI",
        description="Run the selected assets' checks through Dagster against what is in the "
        "lake, print a table and exit 0 (nothing failed at --fail-on or above), 2 (a check "
        "failed) or 1 (the checks could not run: bad options or selection, empty lake, broken "
        "config).",
    )
    check.add_argument(
        "--select", default=None, help="asset selection (market_bars, group:market, ...)"
    )
    window = check.add_mutually_exclusive_group()
    window.add_argument("--partition", default=None, help="one partition key")
    window.add_argument("--partition-range", default=None, help="START...END (inclusive)")
    check.add_argument("--fail-on", choices=("warn", "error"), default="error")
    check.add_argument("--junit-xml", default=None, help="write a JUnit XML report here")
    check.add_argument("--json", default=None, help="write the findings as JSON here")
    check.set_defaults(func=_cmd_check)

    audit = commands.add_parser(
        "audit",
        usage_exit_code=1,  # publish.audit_command.EXIT_CANNOT_RUN
        help="check that the lake, Dagster's history, the warehouse and metadata.json agree",
        description="Recompute, for every dataset and partition, the lake's rows and content "
        "hash and compare them with the latest Dagster materialization, the warehouse table "
        "and metadata.json. Exit 0 when they agree, 2 when they do not (each disagreement "
        "named: dataset, partition, which copies, the figures), 1 when the audit cannot run.",
    )
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.add_argument(
        "--repair",
        action="store_true",
        help="run the materializations that bring the copies back in line (lake first, then "
        "the warehouse and metadata.json), then audit again",
    )
    audit.add_argument(
        "--dataset",
        action="append",
        dest="datasets",
        metavar="NAME",
        help="audit only this dataset (repeatable; default: every dataset)",
    )
    audit.set_defaults(func=_cmd_audit)

    status = commands.add_parser(
        "status",
        help="datasets, checks, schedules, budgets and the stream at a glance (no network)",
        description="What the instance and the lake say now: each dataset's newest partition, "
        "missing partitions, freshness and failing checks; schedules and sensors; call "
        "budgets; the Kraken stream's heartbeat. Exit 1 when an ERROR check is failing or a "
        "dataset is stale beyond its freshness policy, else 0.",
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument(
        "--format",
        choices=("table", "json", "prometheus"),
        default="table",
        help="prometheus: the Prometheus text format, for the node exporter's textfile "
        "collector (exit 0 whenever it was produced: the problems are in the metrics)",
    )
    status.add_argument(
        "--output",
        type=Path,
        default=None,
        help="with --format prometheus: write this *.prom file atomically instead of printing",
    )
    status.set_defaults(func=_cmd_status)

    kraken_replay = commands.add_parser(
        "kraken-replay",
        help="rebuild order books from the stream log and re-verify every checksum",
        description="Rebuild the Kraken order books from the stream log and re-verify\n"
        "every checksum, seq and top-of-book row.",
        epilog=KRAKEN_REPLAY_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kraken_replay.add_argument(
        "--root",
        type=Path,
        default=None,
        help="log root (default: <data dir>/stream/kraken, $INGEST_PLATFORM_DATA_DIR)",
    )
    kraken_replay.add_argument(
        "--day",
        action="append",
        dest="days",
        type=_utc_day,
        metavar="YYYY-MM-DD",
        help="UTC day to replay (repeatable; default: every day in the log)",
    )
    kraken_replay.add_argument(
        "--symbol",
        action="append",
        dest="symbols",
        metavar="PAIR",
        help="pair to replay, e.g. BTC/USD (repeatable; default: every pair)",
    )
    kraken_replay.add_argument("--json", action="store_true", help="print the report as JSON")
    kraken_replay.set_defaults(func=_cmd_kraken_replay)

    kraken_tail = commands.add_parser(
        "kraken-tail",
        help="follow the fan-out on NATS JetStream, re-verifying every book's checksum",
        description="Subscribe to the Kraken fan-out, rebuild each book from a snapshot plus\n"
        "updates, re-verify every checksum, detect seq gaps and epoch changes (resyncing\n"
        "at the next snapshot) and print the top of book as it changes.",
        epilog=KRAKEN_TAIL_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kraken_tail.add_argument(
        "--url",
        default=None,
        help="NATS server (default: $INGEST_PLATFORM_NATS_URL, else nats://127.0.0.1:4222)",
    )
    kraken_tail.add_argument("--pair", default=None, help="one pair only, e.g. BTC/USD")
    start = kraken_tail.add_mutually_exclusive_group()
    start.add_argument(
        "--last", type=int, default=None, metavar="N", help="start with the last N messages"
    )
    start.add_argument(
        "--from-start", action="store_true", help="start with the first message the stream holds"
    )
    kraken_tail.add_argument("--stream", default="KRAKEN", help="JetStream stream name")
    kraken_tail.add_argument(
        "--count", type=int, default=None, metavar="N", help="stop after N messages"
    )
    kraken_tail.add_argument(
        "--idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long without a message (default: follow until Ctrl-C)",
    )
    kraken_tail.set_defaults(func=_cmd_kraken_tail)
    for command in commands.choices.values():  # so a stray option is the command's error
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster flags features we rely on on purpose (backfill policies, resources in sensors)
    # as beta on every import; those notices are not for the person running a command.
    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's parser, with the command's usage and exit code
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
