"""Fixtures shared by the validator and bad-input tests: a kernel fetched once per session, a fresh
cache per test (with that kernel hard-linked in), and one real image of the hello example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.validate import helpers


def _shared_root(factory: pytest.TempPathFactory) -> Path:
    # The base temp folder is shared by every test folder of the session, so the kernel and the hello
    # image are made once even when both tests/validate and tests/badinput use them.
    return factory.getbasetemp() / "osv-java-shared"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OSV_JAVA_CACHE where `osv-java kernel fetch` ran once."""
    cache = _shared_root(tmp_path_factory) / "cache"
    if not (cache / "kernels" / "default.json").exists():
        result = helpers.osv(["kernel", "fetch"], cache, timeout=600)
        if result.status != 0:
            pytest.skip(f"cannot fetch the default kernel here: {result.stderr.strip()[-300:]}")
    return cache


@pytest.fixture()
def cache(tmp_path: Path, shared_cache: Path) -> Path:
    """A per-test cache holding only the session's kernel."""
    folder = tmp_path / "cache"
    helpers.copy_kernel_cache(shared_cache, folder)
    return folder


@pytest.fixture()
def kernel_dir(shared_cache: Path) -> Path:
    return helpers.kernel_folder(shared_cache)


@pytest.fixture(scope="session")
def hello_image(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """A real image of examples/hello, built once."""
    folder = _shared_root(tmp_path_factory) / "hello-image"
    if not (folder / "image.json").exists():
        result = helpers.osv(["build", str(helpers.HELLO_JAR), "-o", str(folder)], shared_cache, timeout=600)
        assert result.status == 0, result.stderr
    return folder


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process checks (jdeps answers) write to a session cache, never the user's."""
    monkeypatch.setenv("OSV_JAVA_CACHE", str(_shared_root(tmp_path_factory) / "inprocess-cache"))
