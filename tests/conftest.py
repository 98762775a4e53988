"""Session-wide fixtures: one osv-java cache for the whole run (kernel fetched once, images built once),
the examples compiled once, and a runner that keeps the guest console log of a failing boot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from osvtest import OSV, ROOT, Osv


def _default_cache() -> Path:
    return Path(os.environ.get("OSV_JAVA_CACHE") or Path.home() / ".cache" / "osv-java")


@pytest.fixture(scope="session")
def osv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache for this session holding (hard links to) the kernel `make kernel` fetched."""
    cache = tmp_path_factory.mktemp("osv-cache")
    default = _default_cache()
    kernels = default / "kernels"
    if (kernels / "default.json").exists():
        import json

        folder = Path(json.loads((kernels / "default.json").read_text())["folder"])
        if folder.is_dir():
            target = cache / "kernels" / folder.name
            shutil.copytree(folder, target, copy_function=os.link)
            (cache / "kernels" / "default.json").write_text(json.dumps({"folder": str(target)}))
    env = {**os.environ, "OSV_JAVA_CACHE": str(cache)}
    if not (cache / "kernels" / "default.json").exists():
        subprocess.run([OSV, "kernel", "fetch"], env=env, check=True)
    # Decide KVM or TCG once for the session, so later runs print nothing of ours.
    probe = (
        "from kernel import linux; from kernel.vm import qemu; qemu.choose_accel('auto', linux.default_kernel().image)"
    )
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, cwd=ROOT, capture_output=True)
    return cache


@pytest.fixture(scope="session")
def examples_built() -> Path:
    subprocess.run([sys.executable, "-m", "examples.build", "--quiet"], cwd=ROOT, check=True)
    return ROOT / "examples"


@pytest.fixture(scope="session")
def test_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/java/*.java compiled once (helpers for file and volume tests)."""
    out = tmp_path_factory.mktemp("test-classes")
    sources = sorted(str(p) for p in (ROOT / "tests" / "java").glob("*.java"))
    subprocess.run(["javac", "--release", "17", "-d", str(out), *sources], check=True)
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(autouse=True)
def _trainings_end_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that ran osv-java on its own (not through `osv`) waits for the start-up archives its
    process runs left to be made, so that they neither load nor change the tests after it."""
    yield
    if "osv_cache" in request.fixturenames:
        from osvtest import wait_for_trainings

        wait_for_trainings(request.getfixturevalue("osv_cache"))


@pytest.fixture
def osv(osv_cache: Path, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Osv]:
    console = tmp_path / "console.log"
    runner = Osv(env={**os.environ, "OSV_JAVA_CACHE": str(osv_cache), "OSV_JAVA_CONSOLE_LOG": str(console)},
                 console_log=console)
    yield runner
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed and console.exists():
        print(f"--- guest console log of the last boot ({console}) ---")
        print(console.read_text(errors="replace")[-6000:])
