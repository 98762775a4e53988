import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A compute load for measuring throughput: THREADS threads (default 2) repeat rounds of random reads
 * over a 32 MB long[], a sort of 20000 ints and string hashing, for SECONDS seconds (default 8).
 *
 *     java -jar compute.jar [SECONDS [THREADS]]
 *
 * Prints "compute: R rounds in S s, L in the last half", L being the steady state once compiled.
 */
public final class Main {
    static final long[] TABLE = new long[4 << 20];

    static long round(SplittableRandom random) {
        long sum = 0;
        int mask = TABLE.length - 1;
        int index = random.nextInt();
        for (int i = 0; i < 200_000; i++) {
            index = index * 1103515245 + 12345;
            sum += TABLE[(index >>> 7) & mask];
        }
        int[] values = random.ints(20_000).toArray();
        Arrays.sort(values);
        sum += values[values.length / 2];
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 2_000; i++) {
            text.setLength(0);
            text.append("item-").append(i).append('-').append(sum);
            sum += text.toString().hashCode();
        }
        return sum;
    }

    public static void main(String[] args) throws Exception {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 8;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        for (int i = 0; i < TABLE.length; i++) {
            TABLE[i] = i * 0x9E3779B97F4A7C15L;
        }
        long start = System.nanoTime();
        long half = start + (long) (seconds * 0.5e9);
        long end = start + (long) (seconds * 1e9);
        long[] total = new long[threads];
        long[] late = new long[threads];
        long[] sink = new long[threads];
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            int id = t;
            workers[t] = new Thread(() -> {
                SplittableRandom random = new SplittableRandom(id);
                long now;
                while ((now = System.nanoTime()) < end) {
                    sink[id] += round(random);
                    total[id]++;
                    if (now >= half) {
                        late[id]++;
                    }
                }
            });
            workers[t].start();
        }
        long rounds = 0;
        long lastHalf = 0;
        for (int t = 0; t < threads; t++) {
            workers[t].join();
            rounds += total[t];
            lastHalf += late[t];
        }
        System.out.println("compute: " + rounds + " rounds in " + seconds + " s, " + lastHalf + " in the last half");
    }
}
