"""npm packages a test needs, installed into its folder once per checkout — under a file lock, so that
parallel test workers (pytest-xdist) neither race one ``npm ci`` against another nor read a half-made
``node_modules``."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path


def install_once(
    npm: str, folder: Path, marker: Path, command: str = "ci"
) -> subprocess.CompletedProcess[str]:
    """``npm <command>`` in ``folder`` unless ``marker`` (a file the install makes) exists; the
    result of the install, or a no-op result when another worker (or an earlier run) made it."""
    with open(folder / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.exists():
            return subprocess.CompletedProcess([npm, command], 0, "", "")
        return subprocess.run(
            [npm, command, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
        )
