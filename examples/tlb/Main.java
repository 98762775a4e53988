import java.util.Random;

/**
 * A TLB-heavy workload: random reads over a large long[] on the heap, and pointer chasing through an
 * object graph linked in random order. Both touch far more memory than a TLB of 4 KB pages covers, so
 * their speed shows whether the heap sits on 2 MB pages.
 *
 *   java -Xmx2g -jar tlb.jar [--array-mb 1024] [--graph-mb 96] [--accesses 20000000] [--rounds 3] [--wait]
 *
 * With --wait it prints "READY PID" once the data is built and waits for a line on stdin before it
 * times anything (a benchmark measures or collapses the heap there).
 *
 * Prints one line per workload and a last one, e.g.
 *   RESULT workload=array ns_per_access=17.9
 *   RESULT workload=graph ns_per_access=96.4
 *   RESULT ns_per_access=41.6          (the geometric mean of the two)
 * Each figure is the median of the rounds, in the thread's CPU time (on a shared machine the time
 * the thread waits for a CPU says nothing about pages); wall_ns_per_access is the wall-clock mean.
 * A warm-up round comes first and is not counted.
 */
public class Main {
    static final class Node {
        Node next;
        long value;
    }

    static long sink;

    static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();
    static long wallNanos;

    /** CPU time of this thread: time the thread was not running (other processes on the CPUs) is not counted. */
    static long cpuNow() {
        return THREADS.getCurrentThreadCpuTime();
    }

    static double arrayRound(long[] data, int accesses, long seed) {
        int mask = Integer.highestOneBit(data.length) - 1;  // a power of two below the length
        long x = seed;
        long sum = 0;
        long wall = System.nanoTime();
        long start = cpuNow();
        for (int i = 0; i < accesses; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            sum += data[(int) x & mask];
        }
        long took = cpuNow() - start;
        wallNanos += System.nanoTime() - wall;
        sink += sum;
        return (double) took / accesses;
    }

    static double graphRound(Node head, int accesses) {
        Node n = head;
        long sum = 0;
        long wall = System.nanoTime();
        long start = cpuNow();
        for (int i = 0; i < accesses; i++) {
            sum += n.value;
            n = n.next;
        }
        long took = cpuNow() - start;
        wallNanos += System.nanoTime() - wall;
        sink += sum;
        return (double) took / accesses;
    }

    static Node buildGraph(int count, Random random) {
        Node[] nodes = new Node[count];
        for (int i = 0; i < count; i++) {
            nodes[i] = new Node();
            nodes[i].value = i;
        }
        int[] order = new int[count];
        for (int i = 0; i < count; i++) {
            order[i] = i;
        }
        for (int i = count - 1; i > 0; i--) {  // Fisher-Yates: one random cycle through every node
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < count; i++) {
            nodes[order[i]].next = nodes[order[(i + 1) % count]];
        }
        return nodes[order[0]];
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        java.util.Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    public static void main(String[] args) {
        int arrayMb = 1024;
        int graphMb = 96;
        int accesses = 20_000_000;
        int rounds = 3;
        boolean wait = false;
        for (int i = 0; i < args.length; i += 2) {
            if (args[i].equals("--wait")) {
                wait = true;
                i--;
                continue;
            }
            switch (args[i]) {
                case "--array-mb" -> arrayMb = Integer.parseInt(args[i + 1]);
                case "--graph-mb" -> graphMb = Integer.parseInt(args[i + 1]);
                case "--accesses" -> accesses = Integer.parseInt(args[i + 1]);
                case "--rounds" -> rounds = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Random random = new Random(42);
        long[] data = null;
        Node head = null;
        if (arrayMb > 0) {
            data = new long[(int) ((long) arrayMb * (1 << 20) / 8)];
            for (int i = 0; i < data.length; i++) {
                data[i] = i;
            }
        }
        if (graphMb > 0) {
            head = buildGraph((int) ((long) graphMb * (1 << 20) / 28), random);  // 24 bytes a node, 4 its slot
        }
        if (wait) {  // let an outside tool look at (or collapse) the heap before the clock starts
            System.out.println("READY " + ProcessHandle.current().pid());
            System.out.flush();
            try {
                new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
            } catch (java.io.IOException e) {
                throw new RuntimeException(e);
            }
        }
        double logSum = 0;
        int workloads = 0;
        if (data != null) {
            arrayRound(data, accesses / 4, 1);
            double[] r = new double[rounds];
            wallNanos = 0;
            for (int i = 0; i < rounds; i++) {
                r[i] = arrayRound(data, accesses, 88172645463325252L + i);
            }
            double ns = median(r);
            System.out.printf("RESULT workload=array ns_per_access=%.3f wall_ns_per_access=%.3f%n", ns,
                    (double) wallNanos / ((long) accesses * rounds));
            logSum += Math.log(ns);
            workloads++;
        }
        if (head != null) {
            int chase = Math.max(1, accesses / 16);  // a dependent miss costs several independent ones
            graphRound(head, chase / 4);
            double[] r = new double[rounds];
            wallNanos = 0;
            for (int i = 0; i < rounds; i++) {
                r[i] = graphRound(head, chase);
            }
            double ns = median(r);
            System.out.printf("RESULT workload=graph ns_per_access=%.3f wall_ns_per_access=%.3f%n", ns,
                    (double) wallNanos / ((long) chase * rounds));
            logSum += Math.log(ns);
            workloads++;
        }
        System.out.printf("RESULT ns_per_access=%.3f%n", Math.exp(logSum / Math.max(1, workloads)));
        if (sink == 42) {
            System.out.println();
        }
    }
}
