"""Quality checks as plain functions over frames: each returns a `Finding`.

No Dagster here: the asset-check factory wraps these, and tests call them directly. This
package imports only `ingest_platform.core` (calendars), pandas and numpy; frames come in as
arguments, never from a domain module.

Import from the modules (``from ingest_platform.quality.coverage import bar_coverage``);
the module map is in each module's docstring.
"""
