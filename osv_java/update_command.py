"""`osv-java update NAME --memory SIZE`: resize a running VM, as `docker update` does.

The VM's balloon (virtio-balloon, which the dynamic-heap policy adds) takes memory from the guest or
gives it back. Inside, the kernel services see MemAvailable fall and shrink the JVM's heap; the pages
the guest frees go back to the host through free page reporting.
"""

from __future__ import annotations

import json

import click

from kernel.vm import registry
from osv_java import options


@click.command("update")
@click.argument("name")
@click.option("-m", "--memory", required=True, help="The guest's new memory size (at most its -m).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def update_command(name: str, memory: str, as_json: bool) -> None:
    """Resize running VM NAME (started with `osv-java run --name NAME`)."""
    mb = options.memory_mb(memory)
    record = registry.lookup(name)  # a clear error naming the running VMs when there is none
    assert record is not None
    answer = registry.request(record, f"balloon {mb * 1024 * 1024}").decode().split()
    actual_mb = int(answer[1]) // (1024 * 1024) if len(answer) == 2 and answer[0] == "ok" else None
    if as_json:
        click.echo(json.dumps({"name": name, "target_mb": mb, "actual_mb": actual_mb}))
    else:
        click.echo(f"{name}: memory target {mb} MB (the guest has {actual_mb} MB now; it follows within seconds)")
