import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Test helper for live volumes:
 * `sync FILE BYTES` writes BYTES bytes (i % 251), fsyncs, says "synced" and waits to be killed;
 * `await FILE` says "ready", waits until FILE exists and prints it;
 * `size FILE` prints FILE's size, says "ready" and waits for the end of stdin.
 */
public class VolumeTool {
    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[1]);
        switch (args[0]) {
            case "sync" -> {
                int bytes = Integer.parseInt(args[2]);
                ByteBuffer data = ByteBuffer.allocate(bytes);
                for (int i = 0; i < bytes; i++) {
                    data.put((byte) (i % 251));
                }
                data.flip();
                try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        StandardOpenOption.TRUNCATE_EXISTING)) {
                    while (data.hasRemaining()) {
                        ch.write(data);
                    }
                    ch.force(true);
                    System.out.println("synced");
                    System.out.flush();
                    Thread.sleep(Long.MAX_VALUE);
                }
            }
            case "await" -> {
                System.out.println("ready");
                System.out.flush();
                while (!Files.exists(path)) {
                    Thread.sleep(50);
                }
                System.out.print(Files.readString(path));
            }
            case "size" -> {
                System.out.println(Files.size(path));
                System.out.println("ready");
                System.out.flush();
                while (System.in.read() >= 0) {
                    // until the end of stdin
                }
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}
