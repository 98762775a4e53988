import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A latency-sensitive request loop: a fixed number of requests (default 20 thousand, first argument in
 * thousands) arriving at a fixed rate (default 5000 per second, second argument), each parsing, sorting
 * and summarising a small batch (about 10 KB of garbage) against a 32 MB cache that keeps changing.
 *
 * Open loop: each request's latency runs from the moment it was due, not from when the loop got to it,
 * so a GC pause delays every request that arrives during it, as in a real service (a closed loop would
 * charge a pause to one request only: coordinated omission). WARMUP requests run first, unmeasured, so
 * that the JIT has compiled the loop before the clock starts. Prints `RESULT ops_per_s=...`,
 * `RESULT p50_ms=...`, `RESULT p99_ms=...`, `RESULT p999_ms=...`, `RESULT max_ms=...`.
 */
public class Main {
    static final int WARMUP = 20_000;

    public static void main(String[] args) {
        int thousands = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        double rate = args.length > 1 ? Double.parseDouble(args[1]) : 5_000;
        int requests = thousands * 1000;
        long period = (long) (1e9 / rate);
        int cacheEntries = 32 * 1024 * 1024 / 1100;
        Map<Integer, byte[]> cache = new HashMap<>(cacheEntries * 2);
        for (int i = 0; i < cacheEntries; i++) {
            cache.put(i, new byte[1024]);
        }
        SplittableRandom random = new SplittableRandom(7);
        long checksum = 0;
        for (int r = 0; r < WARMUP; r++) {
            checksum += serve(cache, random, cacheEntries, r);
        }
        long[] latencies = new long[requests];
        long start = System.nanoTime();
        for (int r = 0; r < requests; r++) {
            long due = start + r * period;
            while (System.nanoTime() < due) {
                Thread.onSpinWait();
            }
            checksum += serve(cache, random, cacheEntries, r);
            latencies[r] = System.nanoTime() - due;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Arrays.sort(latencies);
        System.out.printf("%d requests at %.0f/s in %.2f s (checksum %d)%n", requests, rate, seconds, checksum);
        System.out.printf("RESULT ops_per_s=%.0f%n", requests / seconds);
        System.out.printf("RESULT p50_ms=%.4f%n", percentile(latencies, 0.50));
        System.out.printf("RESULT p99_ms=%.4f%n", percentile(latencies, 0.99));
        System.out.printf("RESULT p999_ms=%.4f%n", percentile(latencies, 0.999));
        System.out.printf("RESULT max_ms=%.4f%n", latencies[latencies.length - 1] / 1e6);
    }

    /** One request: about 10 KB of short-lived garbage and one cache update in four. */
    static int serve(Map<Integer, byte[]> cache, SplittableRandom random, int cacheEntries, int r) {
        List<String> words = new ArrayList<>(64);
        for (int w = 0; w < 64; w++) {
            words.add(Integer.toString(random.nextInt(1_000_000), 36));
        }
        String[] sorted = words.toArray(new String[0]);
        Arrays.sort(sorted);
        int key = random.nextInt(cacheEntries);
        byte[] entry = cache.get(key);
        if (entry == null || (r & 3) == 0) {
            entry = new byte[1024];
            entry[0] = (byte) sorted[0].length();
            cache.put(key, entry);
        }
        return entry[0] + sorted[sorted.length - 1].length();
    }

    static double percentile(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }
}
