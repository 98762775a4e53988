/** Fills MB megabytes of the heap with live long arrays (every page touched), prints "ready PID",
 *  then waits: each line on stdin ("drop" frees the arrays and asks for a GC, "fill" fills again)
 *  is answered with "done"; it exits when stdin closes. A target for the huge-pages tests. */
public class HeapFill {
    static long[][] keep;

    static void fill(int mb) {
        keep = new long[mb][];
        for (int i = 0; i < mb; i++) {
            keep[i] = new long[(1 << 20) / 8 - 16];
            for (int j = 0; j < keep[i].length; j += 512) {
                keep[i][j] = j;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int mb = Integer.parseInt(args[0]);
        fill(mb);
        System.out.println("ready " + ProcessHandle.current().pid());
        System.out.flush();
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.equals("drop")) {
                keep = null;
                System.gc();
            } else if (line.equals("fill")) {
                fill(mb);
            }
            System.out.println("done");
            System.out.flush();
        }
        System.out.println(keep == null ? 0 : keep.length);
    }
}
