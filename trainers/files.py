"""Files replaced whole: a reader sees the old file or the new one, never a half-written one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_file(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename (workers joining a
    study rewrite its files while another worker's training may be reading them). The file is
    readable by all (0644): a study folder may be shared with other users' workers."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600
        with open(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
