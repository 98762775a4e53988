/**
 * Test helper: registers a shutdown hook, says "ready" and waits to be stopped.
 * `Stoppable` prints "hook ran" from the hook; `Stoppable stubborn` has a hook that never ends;
 * `Stoppable FILE` also writes "written by the hook" to FILE from the hook.
 */
public class Stoppable {
    public static void main(String[] args) throws Exception {
        boolean stubborn = args.length > 0 && args[0].equals("stubborn");
        String file = args.length > 0 && args[0].startsWith("/") ? args[0] : null;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (file != null) {
                try {
                    java.nio.file.Files.writeString(java.nio.file.Path.of(file), "written by the hook");
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
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
