import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Switches a static key of the guest kernel on and off while two threads keep its scheduler busy:
 * each switch makes the kernel patch its scheduler's code (int3, the new bytes) on one vCPU while
 * the other runs that code. Prints "done N" after N switches. Only for a VM: it writes the kernel's
 * sched_schedstats setting, which a process run would change on the host.
 */
public class StaticKeyToggler {
    public static void main(String[] args) throws Exception {
        int switches = Integer.parseInt(args[0]);
        Path setting = Path.of("/proc/sys/kernel/sched_schedstats");
        for (int t = 0; t < 2; t++) {
            Thread busy = new Thread(() -> {
                while (true) {
                    Thread.yield();
                    try {
                        Thread.sleep(0, 1000);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            busy.setDaemon(true);
            busy.start();
        }
        for (int i = 1; i <= switches; i++) {
            Files.writeString(setting, (i & 1) == 1 ? "1" : "0");
        }
        System.out.println("done " + switches);
    }
}
