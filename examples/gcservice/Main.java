import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An HTTP service whose collections hurt: a large live set of small objects (so a full collection
 * takes a few hundred milliseconds) and, per request, short-lived garbage plus a "recent requests"
 * cache of small objects that outlives a few young collections (so young collections copy a lot,
 * and what they promote fills the old generation until a full collection).
 *
 * Arguments: PORT [LIVE_MB [GARBAGE_KB [KEPT_KB [KEPT_REQUESTS [ADDRESS]]]]], defaults 8080 200 256 16
 * 4000 127.0.0.1 (in a VM give 0.0.0.0: the published port arrives on the guest's network address).
 */
public class Main {
    static Object[] live;
    static Object[][] recent;
    static long served;
    static volatile long sink;

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8080;
        int liveMb = args.length > 1 ? Integer.parseInt(args[1]) : 200;
        int garbageKb = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        int keptKb = args.length > 3 ? Integer.parseInt(args[3]) : 16;
        int keptRequests = args.length > 4 ? Integer.parseInt(args[4]) : 4000;
        recent = new Object[Math.max(1, keptRequests)][];
        live = new Object[(int) ((long) liveMb * 1024 * 1024 / 64)];
        for (int i = 0; i < live.length; i++) {
            live[i] = new long[6];  // 64 bytes with its header
        }
        String address = args.length > 5 ? args[5] : "127.0.0.1";
        // TCP_NODELAY on accepted connections, as Jetty, Netty and Tomcat set it: without it the JDK's
        // server writes headers and body apart, and on a connection a proxy reuses the body waits for
        // the proxy's delayed ACK (~40 ms), a tail that has nothing to do with the collector
        System.setProperty("sun.net.httpserver.nodelay", "true");
        HttpServer server = HttpServer.create(new InetSocketAddress(address, port), 128);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", exchange -> {
            ThreadLocalRandom random = ThreadLocalRandom.current();
            long sum = 0;
            for (int k = 0; k < garbageKb; k++) {
                byte[] chunk = new byte[1024];
                chunk[random.nextInt(1024)] = 1;
                sum += chunk.length;
            }
            Object[] kept = new Object[keptKb * 16];
            for (int k = 0; k < kept.length; k++) {
                kept[k] = new long[6];
            }
            for (int k = 0; k < 16; k++) {
                live[random.nextInt(live.length)] = new long[6];
            }
            synchronized (Main.class) {
                recent[(int) (served++ % recent.length)] = kept;
            }
            sink += sum;
            byte[] body = "ok\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
            if (exchange.getRequestURI().getPath().equals("/quit")) {
                server.stop(0);
                System.exit(0);
            }
        });
        server.start();
        System.out.println("listening on " + port);
    }
}
