import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A large live set with slow churn: a map of LIVE_MB megabytes of entries (default 96, second
 * argument), then a fixed number of operations (default 2 million, first argument in millions), each
 * replacing one random entry and making a little garbage. Prints `RESULT ops_per_s=...`.
 */
public class Main {
    static final int ENTRY_BYTES = 1024;

    public static void main(String[] args) {
        long millions = args.length > 0 ? Long.parseLong(args[0]) : 2;
        int liveMb = args.length > 1 ? Integer.parseInt(args[1]) : 96;
        int entries = liveMb * 1024 * 1024 / (ENTRY_BYTES + 64);
        Map<Integer, byte[]> live = new HashMap<>(entries * 2);
        for (int i = 0; i < entries; i++) {
            live.put(i, new byte[ENTRY_BYTES]);
        }
        SplittableRandom random = new SplittableRandom(42);
        long ops = millions * 1_000_000L;
        long checksum = 0;
        long start = System.nanoTime();
        for (long i = 0; i < ops; i++) {
            int key = random.nextInt(entries);
            if ((i & 7) == 0) {
                byte[] fresh = new byte[ENTRY_BYTES];
                fresh[0] = (byte) i;
                live.put(key, fresh);
            }
            StringBuilder garbage = new StringBuilder(32).append(key).append('-').append(i);
            checksum += garbage.length() + live.get(key)[0];
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("%d operations on a %d MB live set in %.2f s (checksum %d)%n", ops, liveMb, seconds,
                checksum);
        System.out.printf("RESULT ops_per_s=%.0f%n", ops / seconds);
    }
}
