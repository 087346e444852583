"""Files only this machine's user may read (the administrator key, the serve owner file, a
replica's key file), written so that a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` with ``mode`` (0600: this user only), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    os.chmod(tmp, mode)  # an existing file keeps its mode through O_CREAT
    os.replace(tmp, path)
