package osvjava.agent;

import java.io.IOException;
import java.lang.instrument.Instrumentation;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

import py4j.GatewayServer;

/**
 * Loaded into a running JVM through attach: serves its objects to a Python shell over py4j, on the
 * loopback address only (or, inside a VM, the guest's own address that the host forwards to) and
 * only to a client that knows the token. Options: token=T,portfile=F[,address=A].
 * The port it listens on is written to F (atomically); the shell stops it through shutdown().
 */
public final class OsvJavaGateway {
    private static GatewayServer server;
    private final Instrumentation instrumentation;

    private OsvJavaGateway(Instrumentation instrumentation) {
        this.instrumentation = instrumentation;
    }

    public static synchronized void agentmain(String options, Instrumentation inst) throws IOException {
        String token = null;
        String portFile = null;
        String address = null;
        for (String part : (options == null ? "" : options).split(",")) {
            int eq = part.indexOf('=');
            if (eq < 0) {
                continue;
            }
            String key = part.substring(0, eq);
            String value = part.substring(eq + 1);
            if (key.equals("token")) {
                token = value;
            } else if (key.equals("portfile")) {
                portFile = value;
            } else if (key.equals("address")) {
                address = value;
            }
        }
        if (token == null || token.length() < 16 || portFile == null) {
            throw new IllegalArgumentException("osv-java gateway needs token=(16+ chars),portfile=PATH");
        }
        if (server != null) {
            server.shutdown();
        }
        final String authToken = token;
        final InetAddress listenAddress =
                address == null ? InetAddress.getLoopbackAddress() : InetAddress.getByName(address);
        final GatewayServer[] started = new GatewayServer[1];
        // threads inherit daemon status: started from a daemon thread, the gateway's threads never
        // keep the application's JVM from exiting
        Thread starter = new Thread(() -> {
            // py4j finds classes through the context class loader, which the attach thread lacks:
            // the application's loader, so `jvm.com.example.App` reaches the app's own classes
            Thread.currentThread().setContextClassLoader(ClassLoader.getSystemClassLoader());
            GatewayServer s = new GatewayServer.GatewayServerBuilder(new OsvJavaGateway(inst))
                    .javaPort(0)
                    .javaAddress(listenAddress)
                    .authToken(authToken)
                    .build();
            s.start(true);
            started[0] = s;
        }, "osv-java-gateway-start");
        starter.setDaemon(true);
        starter.start();
        try {
            starter.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting the gateway", e);
        }
        if (started[0] == null) {
            throw new IOException("the py4j gateway did not start");
        }
        server = started[0];
        Path target = Paths.get(portFile);
        Path tmp = Paths.get(portFile + ".tmp");
        Files.write(tmp, Integer.toString(server.getListeningPort()).getBytes(StandardCharsets.US_ASCII));
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The agent's Instrumentation: loaded classes, object sizes. */
    public Instrumentation getInstrumentation() {
        return instrumentation;
    }

    /** Stop serving; called by the shell on exit, after it has sent its last command. */
    public void shutdown() {
        final GatewayServer current;
        synchronized (OsvJavaGateway.class) {
            current = server;
            server = null;
        }
        if (current != null) {
            Thread stopper = new Thread(() -> {
                try {
                    Thread.sleep(200); // let this call's answer reach the shell first
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                current.shutdown();
            }, "osv-java-gateway-stop");
            stopper.setDaemon(true);
            stopper.start();
        }
    }
}
