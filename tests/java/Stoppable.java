/**
 * Test helper: registers a shutdown hook, says "ready" and waits to be stopped.
 * `Stoppable` prints "hook ran" from the hook; `Stoppable stubborn` has a hook that never ends.
 */
public class Stoppable {
    public static void main(String[] args) throws Exception {
        boolean stubborn = args.length > 0 && args[0].equals("stubborn");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("hook ran");
            System.out.flush();
            while (stubborn) {
                try {
                    Thread.sleep(60_000);
                } catch (InterruptedException e) {
                    // keep going
                }
            }
        }));
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
