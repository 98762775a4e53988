"""Find the JVMs running on this machine, containers included, from their hsperfdata files.

Every HotSpot JVM (unless started with -XX:-UsePerfData) publishes /tmp/hsperfdata_<user>/<pid>;
looking in each mount namespace's /tmp once finds JVMs in containers too, without signalling any.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jvmbridge.errors import JvmError
from jvmbridge.hsperf import PerfData
from jvmbridge.proc import PROC, ProcessInfo, target


@dataclass(frozen=True)
class JvmInfo:
    pid: int
    nspid: int
    main: str  # main class or jar, as the launcher was given it
    args: str
    java_version: str
    java_home: str
    vm_name: str
    uptime: float
    heap_used: int
    heap_capacity: int
    heap_max: int
    attachable: bool
    perfdata: Path


def _namespace_pids(tmp: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    try:
        folders = [p for p in tmp.iterdir() if p.name.startswith("hsperfdata_")]
    except OSError:
        return found
    for folder in folders:
        try:
            for entry in folder.iterdir():
                if entry.name.isdigit():
                    found[int(entry.name)] = entry
        except OSError:
            continue
    return found


def candidates() -> list[tuple[ProcessInfo, Path]]:
    """(process, hsperfdata file) of every live process that has one."""
    by_tmp: dict[tuple[int, int], dict[int, Path]] = {}
    result = []
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        try:
            tgt = target(int(entry))
            tmp = tgt.tmp
            st = os.stat(tmp)
        except (JvmError, OSError):
            continue
        key = (st.st_dev, st.st_ino)
        if key not in by_tmp:
            by_tmp[key] = _namespace_pids(tmp)
        path = by_tmp[key].get(tgt.nspid)
        if path is not None:
            result.append((tgt, path))
    return sorted(result, key=lambda item: item[0].pid)


def describe(tgt: ProcessInfo, path: Path) -> JvmInfo:
    with PerfData(path, tgt.pid) as pd:
        stats = pd.stats()
        command = pd.string("sun.rt.javaCommand")
        main, _, args = command.partition(" ")
        return JvmInfo(
            pid=tgt.pid,
            nspid=tgt.nspid,
            main=main,
            args=args,
            java_version=pd.string("java.property.java.version"),
            java_home=pd.string("java.property.java.home"),
            vm_name=pd.string("java.property.java.vm.name"),
            uptime=stats.uptime,
            heap_used=stats.heap_used,
            heap_capacity=stats.heap_capacity,
            heap_max=stats.heap_max,
            attachable=stats.attachable,
            perfdata=path,
        )


def list_jvms() -> list[JvmInfo]:
    """Every running JVM that publishes hsperfdata and that we may read."""
    jvms = []
    for tgt, path in candidates():
        try:
            jvms.append(describe(tgt, path))
        except JvmError:
            continue  # exited meanwhile, still starting, or not readable by us
    return jvms
