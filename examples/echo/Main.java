import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** Copies stdin to stdout byte for byte, then reports the count on stderr. */
public class Main {
    public static void main(String[] args) throws IOException {
        InputStream in = System.in;
        OutputStream out = System.out;
        byte[] buffer = new byte[8192];
        long total = 0;
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
            total += n;
        }
        out.flush();
        System.err.println("echoed " + total + " bytes");
    }
}
