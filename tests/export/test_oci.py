"""`osv-java export --format oci`: the layout passes Debian's skopeo and umoci, is byte-reproducible,
and its root file system runs the app in new mount and PID namespaces under a memory limit, with the
kernel services as the entrypoint and their hooks reading the container's own cgroup."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import ocirun
import pytest
from exportenv import EXAMPLES, JDK17_HOME, JDK25_HOME
from osvtest import Osv, explain, text

pytestmark = pytest.mark.slow

Export = Callable[..., Path]


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_inputs_give_the_same_bytes(export_osv: Osv, oci_export: Export, tmp_path: Path) -> None:
    first = oci_export(str(EXAMPLES / "hello" / "hello.jar"))
    again = tmp_path / "again"
    proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), "--jdk", str(JDK17_HOME), "--format", "oci",
                      "-o", str(again))
    assert proc.returncode == 0, explain(proc)
    assert digests(first) == digests(again)
    assert len(digests(first)) == 2 + 4  # oci-layout, index.json; config, manifest, two layers


def test_skopeo_reads_the_image_and_its_config(oci_tools: None, oci_export: Export) -> None:
    layout = oci_export(str(EXAMPLES / "httpserver" / "httpserver.jar"), "-p", "8080", "-e", "GREETING=hi",
                        "--tag", "1.0")
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{layout}:1.0"], capture_output=True, check=False)
    assert inspect.returncode == 0, text(inspect.stderr)
    assert len(json.loads(inspect.stdout)["Layers"]) == 2
    raw = subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:1.0"], capture_output=True, check=True)
    config = json.loads(raw.stdout)["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"][0] == "/osv/python/bin/python3"
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert "GREETING=hi" in config["Env"]


def test_unpacked_root_runs_the_app_under_a_memory_limit(oci_tools: None, oci_export: Export,
                                                         tmp_path: Path) -> None:
    layout = oci_export(str(EXAMPLES / "hello" / "hello.jar"))
    config = ocirun.unpack(layout, "latest", tmp_path / "bundle")
    assert config["process"]["user"]["uid"] == 65532
    assert not (tmp_path / "bundle" / "rootfs" / "bin" / "sh").exists()  # no shell in the image
    with ocirun.memory_cgroup(384) as cgroup:
        proc = ocirun.run(tmp_path / "bundle", config, cgroup, extra_env={"OSV_JAVA_VERBOSE": "1"})
    assert proc.returncode == 0, explain(proc)
    out = text(proc.stdout)
    assert out.startswith("Hello from osv-java! Java 17"), out
    # the JVM sized its heap from the container's limit (a quarter of 384 MB), not the host's memory
    max_heap = int(re.search(r"max heap (\d+) MB", out).group(1))  # type: ignore[union-attr]
    assert max_heap < 384, out
    # the kernel services read the limit from the container's own cgroup files
    assert re.search(r"osv-java: container: memory cgroup v\d \S+: limit 384 MB", text(proc.stderr)), explain(proc)


def test_an_app_exported_from_under_tmp_runs_with_a_tmpfs_on_tmp(oci_tools: None, export_osv: Osv,
                                                                  tmp_path: Path) -> None:
    # the app's folder is under /tmp here (pytest's tmp_path), as in a clone made there: the image
    # keeps it below /app, and keeps the image's /tmp writable by all (the JVM's hsperfdata goes there)
    app = tmp_path / "src" / "hello.jar"
    app.parent.mkdir()
    app.write_bytes((EXAMPLES / "hello" / "hello.jar").read_bytes())
    layout = tmp_path / "layout"
    proc = export_osv("export", str(app), "--jdk", str(JDK17_HOME), "--format", "oci", "-o", str(layout))
    assert proc.returncode == 0, explain(proc)
    config = ocirun.unpack(layout, "latest", tmp_path / "bundle")
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (rootfs / "app" / str(app).lstrip("/")).is_file()
    with ocirun.memory_cgroup(384) as cgroup:
        runs = [ocirun.run(tmp_path / "bundle", config, cgroup, tmpfs=tmpfs) for tmpfs in (False, True)]
    for run in runs:
        assert run.returncode == 0, explain(run)
        assert text(run.stdout).startswith("Hello from osv-java! Java 17"), explain(run)


def test_exit_status_and_arguments_pass_through(oci_tools: None, oci_export: Export, tmp_path: Path) -> None:
    layout = oci_export(str(EXAMPLES / "exitcode" / "exitcode.jar"), "args", "baked")
    config = ocirun.unpack(layout, "latest", tmp_path / "bundle")
    assert config["process"]["args"][4:] == ["args", "baked"]  # the image's Cmd
    with ocirun.memory_cgroup(384) as cgroup:
        baked = ocirun.run(tmp_path / "bundle", config, cgroup)
        status = ocirun.run(tmp_path / "bundle", config, cgroup, args=["7"])
        thrown = ocirun.run(tmp_path / "bundle", config, cgroup, args=["throw"])
    assert (baked.returncode, text(baked.stdout)) == (0, "[baked]\n"), explain(baked)
    assert (status.returncode, text(status.stdout)) == (7, "exiting with 7\n"), explain(status)
    assert thrown.returncode == 1, explain(thrown)
    assert "IllegalStateException" in text(thrown.stderr)


def test_sigterm_to_the_entrypoint_reaches_the_app_as_docker_stop_does(oci_tools: None, oci_export: Export,
                                                                       tmp_path: Path) -> None:
    layout = oci_export(str(EXAMPLES / "httpserver" / "httpserver.jar"), "-p", "8080")
    config = ocirun.unpack(layout, "latest", tmp_path / "bundle")
    with ocirun.memory_cgroup(384) as cgroup:
        proc = ocirun.start(tmp_path / "bundle", config, cgroup)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"listening on 8080\n"
            os.kill(ocirun.entrypoint_pid(cgroup), signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, text(err)  # the JVM ended by the forwarded signal


def test_jdk_25_image_runs_too(oci_tools: None, export_osv: Osv, tmp_path: Path) -> None:
    if not (JDK25_HOME / "bin" / "jlink").exists():
        pytest.skip(f"Temurin 25 is not installed at {JDK25_HOME} (optional)")
    layout = tmp_path / "layout"
    proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), "--jdk", str(JDK25_HOME), "--format", "oci",
                      "-o", str(layout))
    assert proc.returncode == 0, explain(proc)
    config = ocirun.unpack(layout, "latest", tmp_path / "bundle")
    with ocirun.memory_cgroup(384) as cgroup:
        run = ocirun.run(tmp_path / "bundle", config, cgroup)
    assert run.returncode == 0, explain(run)
    assert text(run.stdout).startswith("Hello from osv-java! Java 25"), explain(run)
    assert text(run.stderr) == ""  # no JEP 451 warning: the image declares the agent loading


def test_dynamic_heap_steers_the_jvm_inside_the_container(oci_tools: None, oci_export: Export,
                                                          tmp_path: Path) -> None:
    # one burst of a 120 MB live set, then a quiet spell long enough for the policy's first attach to
    # the JVM in there even on a loaded machine (6 s was not, once): it must act on that JVM
    layout = oci_export(str(EXAMPLES / "bursty" / "bursty.jar"), "1", "120", "3", "20")
    config = ocirun.unpack(layout, "latest", tmp_path / "bundle")
    with ocirun.memory_cgroup(768) as cgroup:
        proc = ocirun.run(tmp_path / "bundle", config, cgroup, extra_env={"OSV_JAVA_VERBOSE": "1"}, tmpfs=True)
    assert proc.returncode == 0, explain(proc)
    assert "DONE" in text(proc.stdout)
    decisions = re.findall(r"osv-java: dynamic-heap: (\w+)", text(proc.stderr))
    assert decisions, explain(proc)
    assert "failed" not in decisions, explain(proc)
    assert set(decisions) - {"hold"}, explain(proc)  # it did more than watch
    # the huge-pages policy measures the heap in there too, and without CAP_SYS_NICE tries no collapse
    assert "osv-java: hugepages: measure" in text(proc.stderr), explain(proc)
    assert "collapse refused" not in text(proc.stderr), explain(proc)


@pytest.mark.parametrize("args, message, fix", [
    (["--format", "qcow2"], "--format 'qcow2' is not a format osv-java exports", "use --format oci or libvirt"),
    (["--format", "oci", "-m", "512M"], "--format oci cannot honour -m 512M", "docker run --memory"),
    (["--format", "oci", "-v", "/tmp:/data"], "--format oci cannot honour -v /tmp:/data", "docker run -v"),
    (["--format", "oci", "--gc-log", "gc.log"], "--format oci cannot honour --gc-log gc.log", "-Xlog"),
    (["--format", "oci", "--tag", "a b"], "--tag 'a b' is not an image reference name", "--tag 1.0"),
])
def test_bad_input_is_one_line_and_125(export_osv: Osv, tmp_path: Path, args: list[str], message: str,
                                       fix: str) -> None:
    out = tmp_path / "out"
    proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), *args, "-o", str(out))
    assert proc.returncode == 125, explain(proc)
    lines = text(proc.stderr).splitlines()
    assert lines[0] == f"osv-java: error: {message}", explain(proc)
    assert lines[1].startswith("hint: ") and fix in lines[1], explain(proc)
    assert len(lines) == 2
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder


def test_a_folder_that_is_not_empty_is_left_alone(export_osv: Osv, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    proc = export_osv("export", str(EXAMPLES / "hello" / "hello.jar"), "--format", "oci", "-o", str(out))
    assert proc.returncode == 125, explain(proc)
    assert text(proc.stderr).splitlines()[0] == f"osv-java: error: -o {out} exists and is not empty"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
