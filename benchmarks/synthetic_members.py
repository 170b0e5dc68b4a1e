"""The code location scaling.py builds its synthetic universes' reference data with (the
instruments and index_membership assets): the platform's own definitions, with the membership
history's count guard widened for the synthetic members.

The shipped history is checked to hold 495..510 members on every day (a day outside means a
change is missing or recorded twice); thousands of synthetic members are far outside by design.
Only this benchmark code location (``dagster asset materialize -f``) and scaling.py's sandbox
widen the guard; the package, its definitions and its tests keep it as it is.
"""

from functools import partial

from ingest_platform.reference import membership

#: Room for the real members plus any number of synthetic ones.
WIDE_BAND = (membership.COUNT_BAND[0], 1_000_000)


def widen_member_band() -> None:
    """Let `membership.load_history` accept the synthetic members (it calls `reconcile`
    through the module, so the partial is what it finds)."""
    if not isinstance(membership.reconcile, partial):
        membership.reconcile = partial(membership.reconcile, band=WIDE_BAND)  # type: ignore[assignment]


widen_member_band()

from ingest_platform.definitions import defs  # noqa: E402

__all__ = ["defs", "widen_member_band"]
