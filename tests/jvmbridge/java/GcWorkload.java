import java.util.ArrayList;
import java.util.List;

/**
 * Allocates garbage with a retained working set so that every collector runs young, full and
 * concurrent collections; args: rounds [systemGcEvery].
 */
public class GcWorkload {
    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 40;
        int systemGcEvery = args.length > 1 ? Integer.parseInt(args[1]) : 15;
        List<byte[]> retained = new ArrayList<>();
        long sink = 0;
        for (int round = 1; round <= rounds; round++) {
            for (int i = 0; i < 2000; i++) {
                byte[] b = new byte[1024 + (i % 7) * 512];
                sink += b.length;
                if (i % 50 == 0) {
                    retained.add(b);
                }
            }
            if (retained.size() > 6000) {
                retained.subList(0, 3000).clear();
            }
            if (systemGcEvery > 0 && round % systemGcEvery == 0) {
                System.gc();
            }
        }
        System.out.println("done " + sink + " " + retained.size());
    }
}
