"""The model files shipped inside Python packages (the ``local`` extra), found without importing the
packages (importing them would load their native code in the gateway's process)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from modelgate.errors import ProviderNotConfiguredError


def find_packaged(
    module: str, pick: Callable[[Path], Path | None], *, what: str, dist: str, option: str, missing: str
) -> Path:
    """What ``pick`` finds in the installed ``module``'s folder (the first folder where it finds
    something). Neither the package nor the file: ``ProviderNotConfiguredError`` naming ``what``
    (``local model``), the distribution to install (``dist``) or the ``option`` to set instead, and
    what was ``missing``."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderNotConfiguredError(f"{what}: install the 'local' extra ({dist}) or set {option}")
    for folder in spec.submodule_search_locations:
        found = pick(Path(folder))
        if found is not None:
            return found
    raise ProviderNotConfiguredError(f"{what}: {missing} inside the {module} package")
