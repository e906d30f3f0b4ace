"""The artifact store: uploads, job folders and models behind one fsspec file system, so hosts need no shared disk.

`PLAYGROUND_ARTIFACTS` unset: the store is the local data folder itself and every operation is a no-op on files that
are already in place (one host, or hosts sharing a mounted data dir). `PLAYGROUND_ARTIFACTS=s3://bucket/prefix` (with
the usual AWS_* variables, and `PLAYGROUND_S3_ENDPOINT` for an S3-compatible server such as MinIO): every upload and
job folder is also kept in the bucket, under the same relative path it has in the data folder; each host's data
folder is then only a cache of what it fetched or made.

A file is one object: S3 writes an object whole or not at all. A folder (a job folder with its model) is published
atomically through a manifest: its files are uploaded under a fresh version prefix (`<folder>/.v/<token>/...`), then
one small `<folder>/.manifest.json` naming every file's object is written last. Readers go through the manifest only,
so a half-uploaded folder is never seen: before the manifest is written there is nothing (or the previous version).
Upload-then-copy would not do: S3 has no rename, and a copy of many objects is not atomic either.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

log = logging.getLogger("playground.artifacts")

ARTIFACTS_ENV = "PLAYGROUND_ARTIFACTS"
ENDPOINT_ENV = "PLAYGROUND_S3_ENDPOINT"
MANIFEST = ".manifest.json"
VERSIONS = ".v"
_PARTIAL = ".partial-"  # local files and folders being fetched; never published
_READ_TRIES = 3
_STORED_PATH = re.compile(r"(?:^|/)((?:uploads|jobs)/[^/]+/.+)$")


class ArtifactError(OSError):
    """The artifact store could not be read or written."""


class ArtifactStore:
    """Put, get, test and delete artifacts by their path relative to the data folder (`home`)."""

    def __init__(self, home: Path, url: str | None = None, storage_options: Mapping[str, Any] | None = None):
        self.home = Path(home).expanduser().resolve()
        self.url = url.rstrip("/") if url else None
        self._options = dict(storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""

    @classmethod
    def from_env(cls, home: Path, environ: Mapping[str, str] | None = None) -> ArtifactStore:
        """The store `PLAYGROUND_ARTIFACTS` names (the data folder itself when unset)."""
        env = os.environ if environ is None else environ
        url = (env.get(ARTIFACTS_ENV) or "").strip() or None
        options: dict[str, Any] = {}
        if url and url.startswith("s3://"):
            # Another host may have written a moment ago: never answer from a cached listing.
            options = {"use_listings_cache": False, "skip_instance_cache": True}
            if env.get(ENDPOINT_ENV):
                options["endpoint_url"] = env[ENDPOINT_ENV]
        return cls(home, url, options)

    @property
    def remote(self) -> bool:
        """True when artifacts are kept apart from the data folder (a bucket, or another folder)."""
        return self.url is not None

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url or self.home})"

    # ---- writing -------------------------------------------------------------------------------------------------

    def put_file(self, local: Path) -> None:
        """Keep one file of the data folder in the store (one object, written whole)."""
        if not self.remote:
            return
        key = self._key(self.relative(local))
        self._wrap("write", key, lambda: self._put(Path(local), key))

    def put_folder(self, local: Path, include: Callable[[str], bool] | None = None) -> dict[str, Any]:
        """Publish a folder of the data folder atomically; its manifest (files by relative path) is returned.

        Files unchanged since the last publish (same size and SHA-256) keep their objects, so publishing a job
        folder at each checkpoint uploads only what is new. `include(relative path)` picks the files.
        """
        if not self.remote:
            return {}
        local = Path(local)
        unit = self.relative(local)
        old = self._manifest(unit) or {"files": {}}
        token = f"{time.time_ns():x}-{secrets.token_hex(3)}"
        files: dict[str, dict[str, Any]] = {}
        try:
            for rel in _files_of(local):
                if include is not None and not include(rel):
                    continue
                size, digest = _digest(local / rel)
                previous = old["files"].get(rel)
                if previous and (previous["size"], previous["sha256"]) == (size, digest):
                    files[rel] = previous
                    continue
                key = f"{VERSIONS}/{token}/{rel}"
                self._wrap("write", key, lambda rel=rel, key=key: self._put(local / rel, self._key(f"{unit}/{key}")))
                files[rel] = {"key": key, "size": size, "sha256": digest}
            manifest = {"version": token, "published_at": time.time(), "files": files}
            # The commit point: until this one object exists, readers see the previous version (or nothing).
            self._write_manifest(unit, manifest)
        except BaseException:
            self._remove(f"{unit}/{VERSIONS}/{token}")  # what this attempt uploaded; nothing refers to it
            raise
        kept = {entry["key"] for entry in files.values()}
        for key in {entry["key"] for entry in old["files"].values()} - kept:
            self._remove(f"{unit}/{key}")  # superseded; a reader still on the old manifest reads the new one
        return manifest

    def delete(self, local: Path) -> None:
        """Remove a file or folder of the data folder from the store (and from the data folder)."""
        local = Path(local)
        if local.is_dir():
            shutil.rmtree(local, ignore_errors=True)
        else:
            local.unlink(missing_ok=True)
        if self.remote:
            self._remove(self.relative(local))

    # ---- reading -------------------------------------------------------------------------------------------------

    def exists(self, local: Path) -> bool:
        """True when the store has this file, or this folder as published (its manifest is written)."""
        if not self.remote:
            return Path(local).exists()
        relative = self.relative(local)
        return self._is_object(relative) or self._manifest(relative) is not None or self._unit_of(relative) is not None

    def read(self, local: Path) -> bytes | None:
        """The store's bytes of one file (an object, or a file of a published folder), read fresh each time and not
        kept on this host's disk; None when the store does not have it (or there is no store)."""
        if not self.remote:
            return None
        relative = self.relative(local)
        key = self._key(relative)
        if self._is_object(relative):
            try:
                return self._wrap("read", key, lambda: self.fs.cat_file(key))
            except FileNotFoundError:
                return None  # deleted since it was seen
        found = self._unit_of(relative)
        if found is None:
            return None
        unit, sub = found
        chunks: list[bytes] = []

        def read(manifest: dict[str, Any]) -> None:
            entry = manifest["files"].get(sub)
            if entry is not None:
                object_key = self._key(f"{unit}/{entry['key']}")
                chunks.append(self._wrap("read", object_key, lambda: self.fs.cat_file(object_key)))

        self._read(unit, read)
        return chunks[0] if chunks else None

    def local_copy(self, path: str | Path) -> Path:
        """`path` (under the data folder), fetched from the store first when it is not on this host's disk.

        A published folder, a file or folder inside one (`jobs/<id>/model`, `jobs/<id>/report.json`), or an
        uploaded file. It appears whole or not at all: fetched beside, then renamed into place. A path the store
        does not have either is returned as it is, for the caller's own "not found" message.
        """
        path = Path(path)
        if path.exists() or not self.remote:
            return path
        try:
            relative = self.relative(path)
        except ValueError:
            return path  # not in the data folder, so not an artifact (a catalog model, a user's own file)
        if self._is_object(relative):
            self._fetch_file(self._key(relative), path)
            return path
        found = self._unit_of(relative)
        if found is not None:
            unit, sub = found
            self._fetch(unit, path, sub)
        return path

    def sync_folder(self, local: Path) -> bool:
        """Bring a published folder's files into `local`, replacing those that differ; False if none is published."""
        if not self.remote:
            return False
        unit = self.relative(local)
        return self._read(unit, lambda manifest: self._download(unit, manifest["files"], Path(local), merge=True))

    def relative(self, local: str | Path) -> str:
        """`local`'s path relative to the data folder, as the store names it; ValueError outside the data folder."""
        path = Path(local).expanduser()
        path = Path(os.path.normpath(path if path.is_absolute() else self.home / path))
        try:
            return path.relative_to(self.home).as_posix()
        except ValueError:
            return path.resolve().relative_to(self.home).as_posix()  # reached through a symlink

    # ---- sweeping ------------------------------------------------------------------------------------------------

    def sweep(self, known: Callable[[str], bool], *, grace_seconds: float, now: float | None = None) -> list[str]:
        """Remove what nothing refers to and is older than `grace_seconds`; returns the relative paths removed.

        - Versions of a published folder that its manifest does not name: a publish killed before writing its
          manifest, or one whose removal of the version it replaced failed.
        - Job folders and uploads whose record is gone (`known("jobs/<id>")` or `known("uploads/<id>")` is False):
          a delete whose removal failed halfway, or a host that died between upload and record.
        - `.partial-` files and folders of fetches killed midway, in this host's data folder.
        Work in progress is younger than the grace period, so a sweep never races a publish, an upload or a fetch.
        """
        now = time.time() if now is None else now
        removed: list[str] = []
        if self.remote:
            for top in ("jobs", "uploads"):
                for name in self._names(top):
                    unit = f"{top}/{name}"
                    if not known(unit):
                        if now - self._newest(unit, now) > grace_seconds:
                            self._remove(unit)
                            removed.append(unit)
                    elif top == "jobs":
                        removed += self._sweep_versions(unit, now - grace_seconds)
        for top in ("jobs", "uploads"):
            for partial in (self.home / top).glob(f"*/**/*{_PARTIAL}*"):
                if partial.exists() and now - partial.stat().st_mtime > grace_seconds:
                    shutil.rmtree(partial) if partial.is_dir() else partial.unlink(missing_ok=True)
                    removed.append(partial.relative_to(self.home).as_posix())
        if removed:
            log.info("artifact sweep of %s removed %d stray item(s): %s", self, len(removed), removed[:20])
        return removed

    def _sweep_versions(self, unit: str, before: float) -> list[str]:
        manifest = self._manifest(unit)
        named = {entry["key"].split("/")[1] for entry in (manifest or {"files": {}})["files"].values()}
        removed = []
        for token in self._names(f"{unit}/{VERSIONS}"):
            if token not in named and _token_time(token) < before:
                self._remove(f"{unit}/{VERSIONS}/{token}")
                removed.append(f"{unit}/{VERSIONS}/{token}")
        return removed

    def _names(self, relative: str) -> list[str]:
        key = self._key(relative)
        try:
            entries = self._wrap("list", key, lambda: self.fs.ls(key, detail=False))
        except FileNotFoundError:
            return []
        return sorted({str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries} - {""})

    def _newest(self, relative: str, now: float) -> float:
        # When anything under `relative` was last written; `now` (too new to touch) when the store does not say.
        key = self._key(relative)
        try:
            found = self._wrap("list", key, lambda: self.fs.find(key, detail=True))
        except FileNotFoundError:
            return now
        times = [_modified(info) for info in found.values()]
        return max((t for t in times if t is not None), default=now)

    # ---- internals -----------------------------------------------------------------------------------------------

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec file system of the store, made on first use (so a forked job process makes its own)."""
        if self._fs is None:
            assert self.url is not None
            try:
                self._fs, self._root = fsspec.url_to_fs(self.url, **self._options)
            except ImportError as exc:
                hint = "install the S3 support: pip install 'finetune-playground[s3]'"
                raise ArtifactError(f"{ARTIFACTS_ENV}={self.url}: {exc}; {hint}") from exc
        return self._fs

    def _key(self, relative: str) -> str:
        self.fs  # noqa: B018 (sets the root)
        return f"{self._root.rstrip('/')}/{relative}"

    def _wrap(self, doing: str, key: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise ArtifactError(f"could not {doing} {key} in the artifact store {self.url}: {exc}") from exc

    def _put(self, source: Path, key: str) -> None:
        if isinstance(self.fs, LocalFileSystem):  # a folder: write beside and rename, as an object store would
            partial = f"{key}{_PARTIAL}{secrets.token_hex(3)}"
            self.fs.makedirs(os.path.dirname(key), exist_ok=True)
            self.fs.put_file(str(source), partial)
            os.replace(partial, key)
        else:
            self.fs.put_file(str(source), key)

    def _write_manifest(self, unit: str, manifest: dict[str, Any]) -> None:
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        key = self._key(f"{unit}/{MANIFEST}")
        if isinstance(self.fs, LocalFileSystem):
            partial = f"{key}{_PARTIAL}{secrets.token_hex(3)}"
            self.fs.makedirs(os.path.dirname(key), exist_ok=True)
            self._wrap("write", key, lambda: self.fs.pipe_file(partial, body))
            os.replace(partial, key)
        else:
            self._wrap("write", key, lambda: self.fs.pipe_file(key, body))

    def _manifest(self, unit: str) -> dict[str, Any] | None:
        key = self._key(f"{unit}/{MANIFEST}")
        try:
            raw = self._wrap("read", key, lambda: self.fs.cat_file(key))
        except FileNotFoundError:
            return None
        return json.loads(raw)

    def _is_object(self, relative: str) -> bool:
        key = self._key(relative)
        return bool(self._wrap("read", key, lambda: self.fs.isfile(key)))

    def _unit_of(self, relative: str) -> tuple[str, str] | None:
        # The published folder this path is in: `jobs/<id>` for `jobs/<id>/model/config.json`, sub-path `model/...`.
        parts = relative.split("/")
        for depth in range(len(parts), 0, -1):
            unit = "/".join(parts[:depth])
            if self._manifest(unit) is not None:
                return unit, "/".join(parts[depth:])
        return None

    def _remove(self, relative: str) -> None:
        key = self._key(relative)
        try:
            if self.fs.exists(key):
                self.fs.rm(key, recursive=True)
        except FileNotFoundError:
            return  # removed by someone else meanwhile: what we wanted
        except OSError as exc:
            # Left-over objects cost space, not correctness: readers go through manifests. Say so and go on.
            log.warning("could not remove %s from the artifact store %s: %s", key, self.url, exc)

    def _read(self, unit: str, use: Callable[[dict[str, Any]], None]) -> bool:
        # A publish in between may delete the objects of the manifest being read: read the new manifest, try again.
        for attempt in range(_READ_TRIES):
            manifest = self._manifest(unit)
            if manifest is None:
                return False
            try:
                use(manifest)
                return True
            except FileNotFoundError:
                if attempt == _READ_TRIES - 1:
                    raise
                log.info("%s was published again while it was fetched; fetching the new version", unit)
        return False

    def _fetch(self, unit: str, target: Path, sub: str) -> None:
        def fetch(manifest: dict[str, Any]) -> None:
            prefix = f"{sub}/" if sub else ""
            chosen = {rel[len(prefix) :]: e for rel, e in manifest["files"].items() if rel.startswith(prefix)}
            if sub and sub in manifest["files"]:  # a single file of the folder (report.json)
                entry = manifest["files"][sub]
                self._fetch_file(self._key(f"{unit}/{entry['key']}"), target)
            elif chosen:
                partial = target.with_name(f".{target.name}{_PARTIAL}{secrets.token_hex(3)}")
                try:
                    self._download(unit, chosen, partial, merge=False)
                    partial.rename(target)  # the folder appears whole
                except OSError:
                    if not target.is_dir():  # another thread or process fetched it first: theirs is as good
                        raise
                finally:
                    shutil.rmtree(partial, ignore_errors=True)

        self._read(unit, fetch)

    def _download(self, unit: str, files: dict[str, dict[str, Any]], into: Path, *, merge: bool) -> None:
        for rel, entry in sorted(files.items()):
            target = into / rel
            if merge and target.is_file() and _digest(target) == (entry["size"], entry["sha256"]):
                continue
            self._fetch_file(self._key(f"{unit}/{entry['key']}"), target)

    def _fetch_file(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}{_PARTIAL}{secrets.token_hex(3)}")
        try:
            self._wrap("read", key, lambda: self.fs.get_file(key, str(partial)))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)


def localize_paths(value: Any, store: ArtifactStore) -> Any:
    """`value` (a spec, as plain data) with paths of uploads and job folders of another host made local.

    A spec names files as the host that built it sees them (`/hostA/data/uploads/<id>/train.csv`); this host reads
    them from its own data folder, fetched from the store. Paths it cannot find anywhere are kept as they are.
    """
    if isinstance(value, dict):
        return {key: localize_paths(item, store) for key, item in value.items()}
    if isinstance(value, list):
        return [localize_paths(item, store) for item in value]
    # Swapped for this host's copy even when the other host's path happens to exist here (a stale mount, the same
    # disk in tests): the store's copy is the one published, so every host reads the same bytes.
    if not (store.remote and isinstance(value, str) and value.startswith("/")):
        return value
    found = _STORED_PATH.search(value)
    if found is None:
        return value
    local = store.local_copy(store.home / found.group(1))
    return str(local) if local.exists() else value


def _token_time(token: str) -> float:
    # A version token starts with the nanosecond time of its publish, in hex; one that does not is not ours: old.
    try:
        return int(token.split("-", 1)[0], 16) / 1e9
    except ValueError:
        return 0.0


def _modified(info: Mapping[str, Any]) -> float | None:
    # fsspec file systems name the time differently: `mtime` (local), `LastModified` (s3fs), `last_modified`.
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


def _files_of(folder: Path) -> list[str]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _PARTIAL not in d)
        for name in names:
            if _PARTIAL not in name:
                found.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(found)


def _digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return path.stat().st_size, sha.hexdigest()
