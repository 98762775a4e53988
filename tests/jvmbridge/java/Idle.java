/** Sits idle until its stdin closes or it is killed: a target for attach and hsperfdata tests. */
public class Idle {
    public static void main(String[] args) throws Exception {
        byte[][] keep = new byte[64][];
        for (int i = 0; i < keep.length; i++) {
            keep[i] = new byte[64 * 1024];
        }
        System.out.println("ready " + ProcessHandle.current().pid());
        System.out.flush();
        while (System.in.read() != -1) {
            // wait for stdin to close
        }
        System.out.println(keep.length);
    }
}
