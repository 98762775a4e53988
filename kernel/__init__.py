"""Kernel side: kernel provisioning, image building, the guest PID 1 and the QEMU runner."""
