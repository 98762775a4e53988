"""Booting an image in QEMU: the machine, its monitor, boot snapshots, the runner, volumes, the run registry
and the relay of requests to the guest's kernel services."""
