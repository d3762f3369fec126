"""providers/local/packaged.py: the local models' files found inside their packages, and the two
errors that say what to install or set when they are not there."""

from __future__ import annotations

import pytest

from modelgate.errors import ProviderNotConfiguredError
from modelgate.providers.local.packaged import find_packaged


def test_finds_what_pick_returns_in_the_package_folder() -> None:
    found = find_packaged("modelgate", lambda f: f / "errors.py", what="w", dist="d", option="o", missing="m")
    assert found.name == "errors.py" and found.is_file()


def test_a_missing_package_says_what_to_install_or_set() -> None:
    with pytest.raises(ProviderNotConfiguredError) as caught:
        find_packaged(
            "no_such_package_here", lambda f: f, what="local model", dist="llm-x", option="o.p", missing="m"
        )
    assert str(caught.value) == "local model: install the 'local' extra (llm-x) or set o.p"


def test_a_package_without_the_file_says_what_is_missing() -> None:
    with pytest.raises(
        ProviderNotConfiguredError, match=r"^local model: no \.gguf file inside the modelgate package$"
    ):
        find_packaged(
            "modelgate", lambda f: None, what="local model", dist="d", option="o", missing="no .gguf file"
        )
