"""Shared set-up for the language tests: the repository root on sys.path, and the JDKs to run on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is not an installed package

from jvmbridge import jdk as jdks  # noqa: E402
from jvmbridge.errors import OsvJavaError  # noqa: E402


def find_jdk(feature: int) -> jdks.Jdk | None:
    try:
        return jdks.select(str(feature))
    except OsvJavaError:
        return None


@pytest.fixture(scope="session")
def jdk17() -> jdks.Jdk:
    found = find_jdk(17)
    if found is None:
        pytest.skip("no JDK 17 on this machine")
    return found


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
