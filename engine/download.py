"""Resumable downloads for `yaguar models fetch`: HTTP Range from where an earlier try stopped, a
progress bar, and one-line errors."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

CHUNK = 256 * 1024


class FetchError(RuntimeError):
    """A download that did not give the right file; the message says why in one line."""


def download(url: str, part: Path, progress: bool = True, label: str = "", timeout: float = 30) -> None:
    """Download ``url`` into ``part``, resuming what an earlier try left there (HTTP Range); raise
    FetchError, keeping the part for the next try, when the link drops."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, by manifest
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is already complete
            return
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored Range: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=label or part.name,
                disable=not progress,
            ) as bar,
        ):
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, urllib.error.URLError) as exc:
                raise FetchError(f"{url}: download interrupted ({exc}); run fetch again to resume") from None
            out.flush()
            os.fsync(out.fileno())
    if total is not None and part.stat().st_size < total:
        raise FetchError(
            f"{url}: download interrupted at {part.stat().st_size} of {total} bytes; run fetch again"
        )
