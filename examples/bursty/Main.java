import java.util.Random;

/**
 * A bursty workload: each burst builds a large live set and churns it (old objects replaced by new
 * ones, short-lived garbage on the side), then drops it; a quiet phase follows, then the next burst.
 *
 * Usage: java -jar bursty.jar [bursts=2] [liveMB=400] [burstSeconds=8] [quietSeconds=20]
 *
 * Lines on stdout (one per event, flushed):
 *   READY pid=PID
 *   BURST n=1 start
 *   RESULT burst=1 ops=N seconds=S ops_per_s=R
 *   QUIET n=1 start
 *   DONE
 */
public class Main {
    static final int CHUNK = 32 * 1024;

    public static void main(String[] args) throws Exception {
        int bursts = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int liveMb = args.length > 1 ? Integer.parseInt(args[1]) : 400;
        double burstSeconds = args.length > 2 ? Double.parseDouble(args[2]) : 8;
        double quietSeconds = args.length > 3 ? Double.parseDouble(args[3]) : 20;
        System.out.println("READY pid=" + ProcessHandle.current().pid());
        System.out.flush();
        Random random = new Random(42);
        long checksum = 0;
        for (int n = 1; n <= bursts; n++) {
            System.out.println("BURST n=" + n + " start");
            System.out.flush();
            int slots = liveMb * (1024 * 1024 / CHUNK);
            byte[][] live = new byte[slots][];
            long start = System.nanoTime();
            long deadline = start + (long) (burstSeconds * 1e9);
            long ops = 0;
            for (int i = 0; i < slots; i++) {  // build the live set: counts as work too
                live[i] = new byte[CHUNK];
                live[i][i % CHUNK] = (byte) i;
                ops++;
            }
            while (System.nanoTime() < deadline) {
                for (int k = 0; k < 256; k++) {
                    int slot = random.nextInt(slots);
                    byte[] chunk = live[slot];
                    int sum = 0;
                    for (int j = 0; j < 4096; j += 8) {  // work on the live set
                        sum += chunk[j] * 31 + j;
                    }
                    if ((k & 7) == 0) {  // now and then an old chunk becomes garbage in the old generation
                        byte[] fresh = new byte[CHUNK];
                        fresh[k] = (byte) sum;
                        live[slot] = fresh;
                    }
                    StringBuilder temp = new StringBuilder();  // short-lived garbage
                    temp.append(sum).append(':').append(slot);
                    checksum += temp.length();
                    ops++;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            live = null;
            System.out.printf("RESULT burst=%d ops=%d seconds=%.3f ops_per_s=%.1f%n", n, ops, seconds, ops / seconds);
            System.out.println("QUIET n=" + n + " start");
            System.out.flush();
            Thread.sleep((long) (quietSeconds * 1000));
        }
        System.out.println("DONE checksum=" + checksum);
    }
}
