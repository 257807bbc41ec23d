"""Where dataset files are found, and how a missing one is downloaded and checked.

Search order for a named dataset folder (e.g. ``fashion-mnist``), the same inside and outside
``make``: the ``data_dir`` argument (``--data-dir``), each folder in ``INITLAB_DATA``
(``os.pathsep``-separated), ``../shared/data`` beside a source checkout of initlab (when the
package runs from one), ``/usr/share/datasets/<name>`` (where Debian's ``dataset-<name>``
package installs it), then the user cache ``$XDG_CACHE_HOME/initlab/<name>``
(``~/.cache/initlab/<name>``). In each root both ``root/<name>/`` and ``root/`` itself are
tried. A file may be ``.gz`` or raw. (MNIST ships inside the package and is read from there
when none of these holds it.)
When nothing is found and downloads are allowed (``INITLAB_OFFLINE`` unset), the files are
downloaded into the cache, their sha256 checked before they are kept.
"""

from __future__ import annotations

import gzip
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from initlab.atomic import atomic_write_bytes
from initlab.data.idx import sha256_hex
from initlab.errors import DataError

SYSTEM_DATASETS = Path("/usr/share/datasets")


def _checkout_data() -> Path | None:
    """``../shared/data`` beside the checkout this package runs from (src layout), if any."""
    root = Path(__file__).resolve().parents[3]
    shared = root.parent / "shared" / "data"
    return shared if (root / "pyproject.toml").is_file() and shared.is_dir() else None


CHECKOUT_DATA = _checkout_data()
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class IdxFile:
    """One expected IDX file: its stem, sha256 of the uncompressed bytes, and shape."""

    stem: str
    sha256: str
    shape: tuple[int, ...]


def cache_dir() -> Path:
    """The user cache folder of initlab (``$XDG_CACHE_HOME/initlab`` or ``~/.cache/initlab``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "initlab"


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched, in order, for the files of dataset ``name``."""
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    for entry in os.environ.get("INITLAB_DATA", "").split(os.pathsep):
        if entry.strip():
            roots.append(Path(entry.strip()))
    if CHECKOUT_DATA is not None:
        roots.append(CHECKOUT_DATA)
    dirs: list[Path] = []
    for root in roots:
        dirs += [root / name, root]
    dirs += [SYSTEM_DATASETS / name, cache_dir() / name]
    return dirs


def find_in(folder: Path, files: list[IdxFile]) -> dict[str, Path] | None:
    """Paths of all ``files`` in ``folder`` (``.gz`` preferred), or None when any is missing."""
    found: dict[str, Path] = {}
    for f in files:
        for candidate in (folder / f"{f.stem}.gz", folder / f.stem):
            if candidate.is_file():
                found[f.stem] = candidate
                break
        else:
            return None
    return found


def downloads_allowed(download: bool | None) -> bool:
    """``download`` when given; otherwise True unless ``INITLAB_OFFLINE`` is set (to anything
    but 0, false or no)."""
    if download is not None:
        return download
    return os.environ.get("INITLAB_OFFLINE", "").strip().lower() in ("", "0", "false", "no")


def locate(
    name: str,
    files: list[IdxFile],
    *,
    data_dir: str | os.PathLike | None,
    urls: list[str],
    how_to_get: str,
    download: bool | None = None,
) -> dict[str, Path]:
    """Find every file of dataset ``name`` in one folder, or download them, or raise one line."""
    dirs = search_dirs(name, data_dir)
    for folder in dirs:
        found = find_in(folder, files)
        if found is not None:
            return found
    reason = "downloads are off (INITLAB_OFFLINE is set)"
    if downloads_allowed(download):
        try:
            return fetch(name, files, urls)
        except OSError as e:  # URLError, timeouts, refused connections: we are offline
            reason = f"download failed ({_short(e)})"
    searched = ", ".join(str(d) for d in dirs)
    raise DataError(f"Dataset '{name}' not found (searched {searched}); {reason}. {how_to_get}")


def fetch(name: str, files: list[IdxFile], urls: list[str]) -> dict[str, Path]:
    """Download ``files`` into the cache, checking each sha256 before it is kept."""
    target = cache_dir() / name
    target.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for f in files:
        path = target / f"{f.stem}.gz"
        if not path.is_file():
            payload, url = _download_first(f"{f.stem}.gz", urls)
            try:
                raw = gzip.decompress(payload)
            except (EOFError, OSError) as e:
                raise DataError(f"{url}: downloaded file is not valid gzip ({e}).") from None
            got = sha256_hex(raw)
            if got != f.sha256:
                raise DataError(
                    f"{url}: sha256 of the downloaded data is {got[:16]}..., expected "
                    f"{f.sha256[:16]}...; not keeping it."
                )
            atomic_write_bytes(path, payload)  # a killed download leaves no half file
        out[f.stem] = path
    return out


def _download_first(filename: str, urls: list[str]) -> tuple[bytes, str]:
    last: OSError | None = None
    for base in urls:
        url = base + filename
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                return response.read(), url
        except OSError as e:
            last = e
    raise last if last is not None else OSError("no download address")


def _short(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    return str(e).splitlines()[0] if str(e) else type(e).__name__
