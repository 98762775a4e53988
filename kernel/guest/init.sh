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

# Under software emulation the kernel boots on one vCPU (maxcpus=1, see kernel.vm.qemu.ONE_VCPU_BOOT),
# so that no other vCPU runs the code it patches; the others come online here, before the JVM starts,
# so that it sees them all. First a loopback TCP connection over IPv4 and one over IPv6: the kernel
# draws the secrets of its socket hashes on first use and then patches out the static keys that
# guarded the draw; done here, on one vCPU, that patching is over before any app connects, in this
# run and in every run restored from its snapshot (an app's first connection still switches one key).
loopback_connection() {  # to $1, from a client of its family, on an IPv6 listener (as the JVM's)
    nc -l -p 9 </dev/null >/dev/null 2>&1 &
    tries=0
    until nc "$1" 9 </dev/null >/dev/null 2>&1 || [ "$tries" -ge 50 ]; do
        usleep 1000
        tries=$((tries + 1))
    done
    kill $! 2>/dev/null
}

offline=
read -r offline </sys/devices/system/cpu/offline
if [ -n "$offline" ]; then
    ip link set lo up
    loopback_connection 127.0.0.1
    loopback_connection ::1
    usleep 2000  # the patching is left to a kernel worker: on one vCPU it runs while we sleep
    for cpu in /sys/devices/system/cpu/cpu[0-9]*; do
        online=1
        [ -e "$cpu/online" ] && read -r online <"$cpu/online"
        [ "$online" = 0 ] && echo 1 >"$cpu/online"
    done
fi

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
