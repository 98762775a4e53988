/**
 * Steady allocation with a small live set: a fixed number of short-lived objects (default 120 million,
 * or the first argument in millions), a ring of 2 MB of survivors. Prints `RESULT ops_per_s=...`.
 */
public class Main {
    static final class Node {
        final long value;
        final byte[] payload;
        Node(long value, int size) {
            this.value = value;
            this.payload = new byte[size];
        }
    }

    public static void main(String[] args) {
        long millions = args.length > 0 ? Long.parseLong(args[0]) : 120;
        long ops = millions * 1_000_000L;
        Node[] ring = new Node[16_384];
        long checksum = 0;
        long start = System.nanoTime();
        for (long i = 0; i < ops; i++) {
            Node n = new Node(i, 16 + (int) (i & 63));
            checksum += n.payload.length + n.value;
            if ((i & 31) == 0) {
                ring[(int) ((i >>> 5) % ring.length)] = n;
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("allocated %d objects in %.2f s (checksum %d)%n", ops, seconds, checksum);
        System.out.printf("RESULT ops_per_s=%.0f%n", ops / seconds);
    }
}
