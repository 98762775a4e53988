import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * Resolves each argument through the system's resolver (/etc/hosts, then the DNS servers of
 * /etc/resolv.conf) and prints "resolved NAME ADDRESS" per address or "unresolved NAME: WHY";
 * exits 1 when a name did not resolve.
 */
public class Main {
    public static void main(String[] args) {
        int status = 0;
        for (String name : args) {
            try {
                for (InetAddress address : InetAddress.getAllByName(name)) {
                    System.out.println("resolved " + name + " " + address.getHostAddress());
                }
            } catch (UnknownHostException e) {
                System.out.println("unresolved " + name + ": " + e.getMessage());
                status = 1;
            }
        }
        System.exit(status);
    }
}
