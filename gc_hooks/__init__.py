"""Policies that co-design the kernel with the JVM: dynamic heap, huge pages, STW coordination, start-up priority."""

# Modules holding Supervisor classes: the guest's Python gets them with PID 1 (kernel/guest/collect.py).
SUPERVISOR_MODULES = ("gc_hooks.runner", "gc_hooks.gc_log", "gc_hooks.stw", "gc_hooks.pauses", "gc_hooks.haproxy",
                      "gc_hooks.lease", "gc_hooks.dynamic_heap.supervisor", "gc_hooks.hugepages.supervisor",
                      "gc_hooks.startup_priority")
