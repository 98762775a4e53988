package live;

import java.util.ArrayList;
import java.util.List;

/**
 * Test target for looking into a running JVM: prints `ready`, then runs until its stdin closes.
 * `idle` sits still; `churn` allocates garbage in bursts (with a retained working set) so a small
 * heap collects every second or so. GREETING is an app object a shell can read (a package, so
 * py4j's `jvm.live.LiveApp` finds it).
 */
public class LiveApp {
    public static final String GREETING = "hello from the app's own object";
    public static volatile long allocated;

    public static void main(String[] args) throws Exception {
        boolean churn = args.length > 0 && args[0].equals("churn");
        if (churn) {
            Thread worker = new Thread(LiveApp::churn, "churn");
            worker.setDaemon(true);
            worker.start();
        }
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() != -1) {
            // run until stdin closes
        }
        System.out.println("allocated " + allocated);
    }

    private static void churn() {
        List<byte[]> retained = new ArrayList<>();
        while (true) {
            for (int i = 0; i < 4096; i++) {
                byte[] b = new byte[1024];
                allocated += b.length;
                if (i % 64 == 0) {
                    retained.add(b);
                }
            }
            if (retained.size() > 4000) {
                retained.subList(0, 2000).clear();
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                return;
            }
        }
    }
}
