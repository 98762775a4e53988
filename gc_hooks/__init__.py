"""Policies that co-design the kernel with the JVM: dynamic heap, huge pages, STW coordination."""
