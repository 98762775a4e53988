"""Dynamic heap: the JVM's committed heap follows its live set and the memory the machine really has,
and goes back to the machine when a burst is over.

- `decide`: the pure decision (signals -> target committed heap);
- `signals`: readers for /proc/meminfo, PSI, the memory cgroup and the JVM's hsperfdata;
- `actuate`: the flags each collector honours, set over dynamic attach;
- `supervisor`: the Supervisor that ticks beside the JVM;
- `policy`: the `DynamicHeap` Policy (launch flags, the balloon device, the supervisor).

Everything but `policy` is standard library only: PID 1 runs it in the guest.
"""
