/** Greets from wherever it runs, with the Java version, the CPU count and the max heap. */
public class Main {
    public static void main(String[] args) {
        Runtime rt = Runtime.getRuntime();
        System.out.printf("Hello from osv-java! Java %s, %d CPUs, max heap %d MB%n",
                System.getProperty("java.version"), rt.availableProcessors(), rt.maxMemory() / (1024 * 1024));
    }
}
