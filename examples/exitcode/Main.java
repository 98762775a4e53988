/** Exits with the status given as its first argument; with "throw", dies of an uncaught exception. */
public class Main {
    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("throw")) {
            throw new IllegalStateException("thrown on purpose");
        }
        if (args.length > 0 && args[0].equals("args")) {
            for (int i = 1; i < args.length; i++) {
                System.out.println("[" + args[i] + "]");
            }
            return;
        }
        int status = args.length > 0 ? Integer.parseInt(args[0]) : 0;
        System.out.println("exiting with " + status);
        System.exit(status);
    }
}
