import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A latency-sensitive request loop: a fixed number of requests (default 100 thousand, first argument
 * in thousands), each parsing, sorting and summarising a small batch (about 10 KB of garbage) against a
 * 32 MB cache that keeps changing. Each request's latency is measured; prints
 * `RESULT ops_per_s=... p50_ms=... p99_ms=... p999_ms=... max_ms=...` (one name=value per line).
 */
public class Main {
    public static void main(String[] args) {
        int thousands = args.length > 0 ? Integer.parseInt(args[0]) : 100;
        int requests = thousands * 1000;
        int cacheEntries = 32 * 1024 * 1024 / 1100;
        Map<Integer, byte[]> cache = new HashMap<>(cacheEntries * 2);
        SplittableRandom random = new SplittableRandom(7);
        long[] latencies = new long[requests];
        long checksum = 0;
        long start = System.nanoTime();
        for (int r = 0; r < requests; r++) {
            long begin = System.nanoTime();
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
            checksum += entry[0] + sorted[sorted.length - 1].length();
            latencies[r] = System.nanoTime() - begin;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Arrays.sort(latencies);
        System.out.printf("%d requests in %.2f s (checksum %d)%n", requests, seconds, checksum);
        System.out.printf("RESULT ops_per_s=%.0f%n", requests / seconds);
        System.out.printf("RESULT p50_ms=%.4f%n", percentile(latencies, 0.50));
        System.out.printf("RESULT p99_ms=%.4f%n", percentile(latencies, 0.99));
        System.out.printf("RESULT p999_ms=%.4f%n", percentile(latencies, 0.999));
        System.out.printf("RESULT max_ms=%.4f%n", latencies[latencies.length - 1] / 1e6);
    }

    static double percentile(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }
}
