"""Files on object storage (``s3://``, ``gs://``, ``memory://``): whole objects, one request each.

An object store has no rename, so the local recipe for an atomic file (temporary file, fsync,
rename; `core.durable`) does not carry over, and a temporary object + copy + delete is three
requests a crash can separate. What an object store does promise is enough on its own:

- an object becomes visible only when the request that uploads it has completed, and a PUT to
  an existing key replaces the old object in one step: a reader gets the old bytes or the new,
  never a mixture, and a writer killed before its PUT completes has changed nothing;
- so a file is serialized whole in memory and sent with ONE PUT (`put_object`). Never as a
  streamed or multipart upload: s3fs's ``pipe_file`` switches to one from twice its chunk size
  (100 MiB by default); `put_object` raises the chunk size to the object's size, so every object
  up to S3's 5 GiB single-PUT limit goes as one ``PutObject``, and refuses anything bigger;
- a reader fetches a file whole with ONE GET (`get_object`), so it decodes a single version of
  the object even while a writer replaces it (a ranged read of a replaced object could mix two);
- fsspec caches directory listings for the life of the process (s3fs never expires them), so a
  long-lived reader would not see objects another process wrote: every listing and existence
  check here drops the cached entries first (`list_names`, `exists`).

Credentials and endpoints come from the filesystem's own configuration (for S3: the standard
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_ENDPOINT_URL`` environment variables,
``~/.aws``, an instance role, or fsspec's config files); nothing here reads, logs or stores them.
"""

from __future__ import annotations

import os
from pathlib import Path

from fsspec import AbstractFileSystem
from upath import UPath

#: S3 refuses a single PutObject above 5 GiB.
S3_MAX_PUT_BYTES = 5 * 2**30
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})


#: Where a root may be: a local path, or an fsspec URL as text or as a `UPath`.
Root = str | os.PathLike[str] | UPath


class ObjectTooLarge(ValueError):
    """An object would exceed what one PUT may carry (and we never split an upload)."""


def is_local(path: UPath | Path) -> bool:
    """Whether `path` is on the local filesystem (where `core.durable` makes files atomic)."""
    return not isinstance(path, UPath) or path.protocol in _LOCAL_PROTOCOLS


def resolve(root: Root) -> Path | UPath:
    """A root as the platform writes to it: a local path as a `Path` (exactly as before object
    storage existed), an fsspec URL (``s3://bucket/lake``) as a `UPath`.

    ``file://`` URLs are local paths.
    """
    if isinstance(root, UPath):
        return Path(root.path) if is_local(root) else root
    if isinstance(root, os.PathLike) or "://" not in root:
        return Path(root)
    url = UPath(root)
    return Path(url.path) if is_local(url) else url


def path_or_url(root: str) -> str | Path:
    """A configured root for callers typed for local paths: a local one as a `Path`, a URL
    (``s3://...``) as its text, which every reader and writer here accepts too."""
    where = resolve(root)
    return where if isinstance(where, Path) else root


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def put_object(path: UPath, data: bytes) -> int:
    """Create or replace the object at `path` with `data` in one PUT; return its size.

    No directory is created first: key prefixes need none, and s3fs's ``makedirs`` would
    create a missing bucket instead of reporting it.
    """
    fs = path.fs
    options: dict[str, int] = {}
    if "s3" in _protocols(fs):
        if len(data) >= S3_MAX_PUT_BYTES:
            raise ObjectTooLarge(
                f"{path}: {len(data):,} bytes exceed one S3 PUT ({S3_MAX_PUT_BYTES:,}); "
                "split the data into smaller files"
            )
        # s3fs uploads in one put_object while size < 2 * chunksize, else multipart.
        options["chunksize"] = max(len(data), 1)
    fs.pipe_file(path.path, data, **options)
    return len(data)


def get_object(path: UPath) -> bytes:
    """The whole object at `path`, in one GET (one version, even mid-replacement).

    s3fs would otherwise ask for the size first and split an object above its block size
    (50 MiB) into concurrent ranged GETs, which a concurrent PUT could stitch from two versions.
    """
    fs = path.fs
    options = {"max_concurrency": 1} if "s3" in _protocols(fs) else {}
    return fs.cat_file(path.path, **options)


def forget_cached_listing(path: UPath) -> None:
    """Drop what the filesystem cached about `path` and its parents' listings."""
    path.fs.invalidate_cache(path.path)


def list_names(directory: UPath) -> list[str]:
    """Names of the entries directly under `directory` as the store holds them now (sorted;
    empty when there is nothing under it)."""
    forget_cached_listing(directory)
    try:
        entries = directory.fs.ls(directory.path, detail=False)
    except FileNotFoundError:
        return []
    base = directory.path.rstrip("/")
    keys = (str(entry).rstrip("/") for entry in entries)
    names = {key.rsplit("/", 1)[-1] for key in keys if key != base}
    return sorted(names)


def exists(path: UPath) -> bool:
    """Whether an object (or a prefix) exists at `path` now, not as cached."""
    forget_cached_listing(path)
    return path.exists()
