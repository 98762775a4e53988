import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;

/**
 * Holds a live set and makes garbage at a rate, both set from stdin:
 *   live MB    keep MB megabytes reachable (64 KB chunks)
 *   churn MB   allocate about MB megabytes of short-lived garbage per second (0: idle)
 *   old MB     ... of which this many per second replace live chunks (garbage in the old generation)
 *   spin PCT   keep one core PCT percent busy (an app at work)
 * Prints "ready PID" once, then "ok LINE" after each command took effect.
 */
public class HeapHolder {
    static final int CHUNK = 64 * 1024;
    static final List<byte[]> live = new ArrayList<>();
    static volatile int churnMb = 0;
    static volatile int oldMb = 0;
    static volatile int spinPct = 0;
    static long sink;

    public static void main(String[] args) throws Exception {
        Thread worker = new Thread(HeapHolder::work, "worker");
        worker.setDaemon(true);
        worker.start();
        System.out.println("ready " + ProcessHandle.current().pid());
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.trim().split(" ");
            int mb = Integer.parseInt(parts[1]);
            switch (parts[0]) {
                case "live":
                    synchronized (live) {
                        int want = mb * (1024 * 1024 / CHUNK);
                        while (live.size() > want) live.remove(live.size() - 1);
                        while (live.size() < want) live.add(new byte[CHUNK]);
                    }
                    break;
                case "churn": churnMb = mb; break;
                case "old": oldMb = mb; break;
                case "spin": spinPct = mb; break;
                default: throw new IllegalArgumentException(line);
            }
            System.out.println("ok " + line.trim());
            System.out.flush();
        }
    }

    static void work() {
        java.util.Random random = new java.util.Random(1);
        while (true) {
            long start = System.nanoTime();
            int young = churnMb * 1024 * 1024 / 100 / 1024;  // 1 KB objects per 10 ms
            for (int i = 0; i < young; i++) {
                byte[] b = new byte[1024];
                b[i & 1023] = (byte) i;
                sink += b[(i * 7) & 1023];
            }
            int old = oldMb * 1024 * 1024 / 100 / CHUNK;
            synchronized (live) {
                for (int i = 0; i < old && !live.isEmpty(); i++) {
                    live.set(random.nextInt(live.size()), new byte[CHUNK]);
                }
            }
            long spinUntil = start + spinPct * 100_000L;
            while (System.nanoTime() < spinUntil) {
                sink += System.nanoTime() & 7;
            }
            long left = 10_000_000 - (System.nanoTime() - start);
            try {
                if (left > 0) Thread.sleep(left / 1_000_000, (int) (left % 1_000_000));
            } catch (InterruptedException e) {
                return;
            }
        }
    }
}
