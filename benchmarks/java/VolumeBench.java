import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * File system work for benchmarks/volumes.py, timed inside the JVM (so the boot is not counted).
 * VolumeBench DIR MB FILES: writes DIR/written.bin (MB MiB in 1 MiB writes, then fsync), reads
 * DIR/given.bin (made by the host before the run) to the end, creates FILES small files under
 * DIR/many/ and stats each. Prints one line: write_s read_s files_s read_bytes.
 */
public class VolumeBench {
    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args[0]);
        int mb = Integer.parseInt(args[1]);
        int files = Integer.parseInt(args[2]);
        ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 20);
        for (int i = 0; i < chunk.capacity(); i++) {
            chunk.put((byte) i);
        }

        long t0 = System.nanoTime();
        try (FileChannel out = FileChannel.open(dir.resolve("written.bin"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            for (int i = 0; i < mb; i++) {
                chunk.clear();
                while (chunk.hasRemaining()) {
                    out.write(chunk);
                }
            }
            out.force(true);
        }
        long t1 = System.nanoTime();

        long read = 0;
        try (FileChannel in = FileChannel.open(dir.resolve("given.bin"), StandardOpenOption.READ)) {
            while (true) {
                chunk.clear();
                int n = in.read(chunk);
                if (n < 0) {
                    break;
                }
                read += n;
            }
        }
        long t2 = System.nanoTime();

        Path many = Files.createDirectories(dir.resolve("many"));
        byte[] small = "a small file\n".getBytes();
        for (int i = 0; i < files; i++) {
            Files.write(many.resolve("f" + i), small);
        }
        long sizes = 0;
        for (int i = 0; i < files; i++) {
            sizes += Files.size(many.resolve("f" + i));
        }
        long t3 = System.nanoTime();
        if (sizes != (long) files * small.length) {
            throw new IllegalStateException("stat saw " + sizes + " bytes");
        }
        System.out.printf("%.4f %.4f %.4f %d%n", (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, read);
    }
}
