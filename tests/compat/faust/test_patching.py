"""Installing a mend only on the versions it was written against (app.compat.faust.patching)."""
from __future__ import annotations

import importlib.metadata

import pytest

from app.compat.faust.patching import UnsupportedVersion, require


def test_the_installed_version_passes_and_is_returned():
    installed = importlib.metadata.version("faust-streaming")
    assert require("faust-streaming", ("0.0.1", installed), mend="m") == installed


def test_another_version_is_refused_naming_the_mend_and_both_versions(installed):
    installed(faust_streaming="0.16.0")
    with pytest.raises(UnsupportedVersion) as refused:
        require("faust-streaming", ("0.15.3",), mend="app.compat.faust.recovery")
    message = str(refused.value)
    assert message.startswith("app.compat.faust.recovery was written against faust-streaming 0.15.3, "
                              "but faust-streaming 0.16.0 is installed")
    assert (refused.value.installed, refused.value.supported) == ("0.16.0", ("0.15.3",))


def test_a_missing_distribution_is_refused():
    with pytest.raises(UnsupportedVersion, match="no-such-distribution is not installed") as refused:
        require("no-such-distribution", ("1.0",), mend="m")
    assert refused.value.installed is None

