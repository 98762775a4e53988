/**
 * Test helper: says "ready" and waits to be stopped; its shutdown hook creates FILE (args[0]) and
 * lingers a second before the JVM ends, so a ready point on FILE comes after the stop was asked.
 */
public class LateReady {
    public static void main(String[] args) throws Exception {
        java.nio.file.Path file = java.nio.file.Path.of(args[0]);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                java.nio.file.Files.writeString(file, "made by the hook");
                Thread.sleep(1000);
            } catch (java.io.IOException | InterruptedException e) {
                throw new RuntimeException(e);
            }
            System.out.println("hook ran");
            System.out.flush();
        }));
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
