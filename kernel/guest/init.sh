#!/bin/busybox sh
# /init: the guest's first steps, before the kernel services (Python) take over as PID 1.
#
# It mounts the pseudo file systems and the JRE's runtime image and, when the host put the JVM's
# command on the kernel command line (osvexec=), starts the JVM right away: Python's own start-up
# then overlaps the JVM's instead of preceding it. It execs Python in any case; Python adopts the JVM
# (OSV_JVM_PID) and its stdin/stdout/stderr: FIFOs under /run, which this shell holds open read-write
# on fds 3 to 5 until Python has opened its own ends (so no open blocks, and no byte or end of file is
# lost in between); the JVM gets plain read or write ends. If a step fails here, the JVM is
# not started and Python does the same steps again, so the failure is reported to the host.
# The image builder fills in @RUNTIME_MOUNT@, @DISK_MODULES@ and @PYTHON@.

mount -t devtmpfs -o nosuid devtmpfs /dev
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
read -r OSV_T_INIT _ </proc/uptime
export OSV_T_INIT

# Under software emulation the kernel boots on one vCPU (maxcpus=1, see kernel.vm.qemu.base_cmdline),
# so that no other vCPU runs the code it patches while it starts; the others come online here,
# before anything else runs, so that the JVM sees them all.
for cpu in /sys/devices/system/cpu/cpu[0-9]*; do
    online=1
    [ -e "$cpu/online" ] && read -r online <"$cpu/online"
    [ "$online" = 0 ] && echo 1 >"$cpu/online"
done

runtime_mounted() {
    [ -e /osv/run.txt ] && return 1  # an exported machine: its PID 1 mounts the runtime disk
    for module in @DISK_MODULES@; do
        insmod "$module" || return 1
    done
    waited=0  # the device appears a moment after its driver loads (no udev here)
    while [ ! -b /dev/pmem0 ]; do
        [ "$waited" -ge 5000 ] && return 1
        usleep 1000
        waited=$((waited + 1))
    done
    mount -t erofs -o ro,dax=always /dev/pmem0 @RUNTIME_MOUNT@ 2>/dev/null ||
        mount -t erofs -o ro /dev/pmem0 @RUNTIME_MOUNT@  # a kernel without DAX for EROFS
}

if runtime_mounted; then
    export OSV_RUNTIME_MOUNTED=1
    if [ -n "$osvexec" ]; then
        ip link set lo up && hostname -F /etc/hostname  # as network.loopback_up does
        mkfifo /run/osv-stdin /run/osv-stdout /run/osv-stderr &&
            exec 3<>/run/osv-stdin 4<>/run/osv-stdout 5<>/run/osv-stderr &&
            read -r OSV_T_EXEC _ </proc/uptime &&
            { (eval "$(echo "$osvexec" | base64 -d)") </run/osv-stdin >/run/osv-stdout 2>/run/osv-stderr \
                3>&- 4>&- 5>&- & } &&
            export OSV_JVM_PID=$! OSV_T_EXEC
    fi
fi
unset osvexec
# An exported machine (osv-java export) carries its run request and has no osv-java host to talk to.
[ -e /osv/run.txt ] && exec @PYTHON@ -S -c 'from kernel.guest.standalone import run; run()'
exec @PYTHON@ -S -c 'from kernel.guest.pid1 import run; run()'
