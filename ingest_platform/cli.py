"""`ingest-platform`: the command line for demos, the sandbox and CI.

Every command that runs Dagster work uses the repository's instance (``dagster.yaml`` at the
root, SQLite under ``data/dagster``) unless DAGSTER_HOME points elsewhere, so what the demo
runs is what the UI shows afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ingest_platform import settings


def use_project_instance() -> str:
    """Point Dagster at the repository instance (unless DAGSTER_HOME is set) and return it.

    The instance config uses paths relative to its folder, so the process also moves there.
    """
    home = os.environ.get("DAGSTER_HOME") or str(settings.PROJECT_ROOT)
    os.environ["DAGSTER_HOME"] = home
    os.chdir(home)
    return home


def _cmd_demo(args: argparse.Namespace) -> int:
    from ingest_platform import demo

    home = use_project_instance()
    return demo.run_demo(dagster_home=home, out=sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest-platform",
        description="Financial ground-truth ingestion on Dagster: demo, sandbox and CI tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the main job on embedded defaults (SQLite instance, local lake, sandbox sources)",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
