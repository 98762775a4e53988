import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A service for ready-point snapshots (osv-java run --snapshot-when-ready): it answers HTTP on port
 * 8080 (or the first argument) with values it computed before it listened ("early_...") and values
 * computed for each request, one "name value" per line. GET /quit answers, then exits with status 3.
 * A second argument names a file created once the server listens (a ready point by file). It prints
 * "starting" before it listens (output a restored run does not repeat) and a line per request.
 */
public class Main {
    /** ThreadLocalRandom's next value on a thread started now (its seed comes from a static generator). */
    static String newThreadDraw() {
        long[] drawn = new long[1];
        Thread thread = new Thread(() -> drawn[0] = ThreadLocalRandom.current().nextLong());
        thread.start();
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return Long.toString(drawn[0]);
    }

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8080;
        System.out.println("starting on port " + port);
        Map<String, String> early = new TreeMap<>();
        early.put("early_start_millis", Long.toString(System.currentTimeMillis()));
        early.put("early_jvm_start_time", Long.toString(ManagementFactory.getRuntimeMXBean().getStartTime()));
        early.put("early_threadlocalrandom", Long.toString(ThreadLocalRandom.current().nextLong()));
        early.put("early_splittablerandom", Long.toString(new SplittableRandom().nextLong()));
        early.put("early_uuid", UUID.randomUUID().toString());
        early.put("early_math_random", Double.toString(Math.random()));
        SecureRandom seededBefore = new SecureRandom();
        early.put("early_securerandom", Long.toString(seededBefore.nextLong()));
        early.put("securerandom_algorithm", seededBefore.getAlgorithm());

        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/", exchange -> {
            Map<String, String> values = new TreeMap<>(early);
            values.put("now_millis", Long.toString(System.currentTimeMillis()));
            values.put("now_threadlocalrandom", Long.toString(ThreadLocalRandom.current().nextLong()));
            values.put("now_new_thread_threadlocalrandom", newThreadDraw());
            values.put("now_splittablerandom", Long.toString(new SplittableRandom().nextLong()));
            values.put("now_math_random", Double.toString(Math.random()));
            values.put("now_uuid", UUID.randomUUID().toString());
            values.put("now_early_securerandom", Long.toString(seededBefore.nextLong()));
            values.put("now_new_securerandom", Long.toString(new SecureRandom().nextLong()));
            StringBuilder body = new StringBuilder();
            values.forEach((name, value) -> body.append(name).append(' ').append(value).append('\n'));
            byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
            String path = exchange.getRequestURI().getPath();
            System.out.println("answered " + path);
            if (path.equals("/quit")) {
                server.stop(0);
                System.exit(3);
            }
        });
        server.start();
        System.out.println("listening on " + port);
        if (args.length > 1) {
            Files.createFile(Path.of(args[1]));
        }
    }
}
