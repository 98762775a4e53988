import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;

/** What a run must not share with another restored from the same boot snapshot: the clock and randomness. */
public class Fresh {
    public static void main(String[] args) throws Exception {
        System.out.println("millis " + System.currentTimeMillis());
        System.out.println("securerandom " + new SecureRandom().nextLong());
        System.out.println("kernel-uuid " + Files.readString(Path.of("/proc/sys/kernel/random/uuid")).trim());
    }
}
