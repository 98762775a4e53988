package osvjava;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A JVM that has started and waits for its app: a machine saved here restores with the JVM's own
 * start already done, and any app of the same runtime and options runs in it.
 *
 * <p>Arguments: the FIFO the launch comes on, and the file to create once waiting (the ready point).
 * The launch is NUL-terminated UTF-8 strings: the class path, the main class, what the launcher's
 * command names (the main class, or the jar given to -jar), then the app's arguments.
 * The class path goes onto the system class loader (as if given with -cp: the app's classes, its
 * resources and its manifest Class-Path come from the same loader as in a plain start), then main
 * runs on this thread. What differs from `java -cp CP MAIN`: the JVM's start time and options are the
 * saved machine's, and its options hold the --add-opens this class needs to extend the class path.
 */
public final class Zygote {
    private Zygote() {}

    public static void main(String[] args) throws Throwable {
        Path fifo = Path.of(args[0]);
        Files.createFile(Path.of(args[1]));
        List<String> launch = read(fifo);
        String classPath = launch.get(0);
        String mainName = launch.get(1);
        String[] appArgs = launch.subList(3, launch.size()).toArray(new String[0]);

        ClassLoader system = ClassLoader.getSystemClassLoader();
        Method append = system.getClass().getDeclaredMethod("appendToClassPathForInstrumentation", String.class);
        append.setAccessible(true);
        for (String entry : classPath.split(File.pathSeparator, -1)) {
            append.invoke(system, entry.isEmpty() ? "." : entry);  // an empty entry is the working folder
        }
        System.setProperty("java.class.path", classPath);
        System.setProperty("sun.java.command", String.join(" ", launch.subList(2, launch.size())));

        Method main = mainMethod(system, mainName);
        try {
            main.invoke(null, (Object) appArgs);
        } catch (InvocationTargetException e) {
            throw withoutOurFrames(e.getCause());
        } catch (ExceptionInInitializerError e) {
            throw withoutOurFrames(e);
        }
    }

    /** The app's main method, or the launcher's own error and exit status when there is none. */
    private static Method mainMethod(ClassLoader loader, String name) {
        Class<?> mainClass;
        try {
            mainClass = Class.forName(name, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            System.err.println("Error: Could not find or load main class " + name);
            System.err.println("Caused by: " + e);
            System.exit(1);
            throw new AssertionError(e);
        }
        try {
            Method main = mainClass.getMethod("main", String[].class);
            if (Modifier.isStatic(main.getModifiers()) && main.getReturnType() == void.class) {
                main.setAccessible(true);  // a public method of a class that need not be public
                return main;
            }
        } catch (NoSuchMethodException e) {
            // below
        }
        System.err.println("Error: Main method not found in class " + name + ", please define the main method as:");
        System.err.println("   public static void main(String[] args)");
        System.exit(1);
        throw new AssertionError(name);
    }

    private static List<String> read(Path fifo) throws java.io.IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (InputStream in = Files.newInputStream(fifo)) {
            in.transferTo(bytes);
        }
        byte[] data = bytes.toByteArray();
        List<String> fields = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < data.length; i++) {
            if (data[i] == 0) {
                fields.add(new String(data, start, i - start, StandardCharsets.UTF_8));
                start = i + 1;
            }
        }
        if (fields.size() < 3) {
            throw new IllegalStateException("osv-java zygote: a launch needs a class path, a main class and a command");
        }
        return fields;
    }

    /**
     * The throwable with the frames of this class and of the reflective call below the app's main cut
     * from its stack trace, and from its causes' and suppressed ones': printed by the JVM's handler of
     * uncaught exceptions, it then reads as in a plain start.
     */
    static Throwable withoutOurFrames(Throwable thrown) {
        cut(thrown, new IdentityHashMap<>());
        return thrown;
    }

    private static void cut(Throwable t, Map<Throwable, Boolean> seen) {
        if (t == null || seen.put(t, Boolean.TRUE) != null) {
            return;
        }
        StackTraceElement[] frames = t.getStackTrace();
        int end = frames.length;
        while (end > 0 && frames[end - 1].getClassName().equals(Zygote.class.getName())) {
            end--;
        }
        if (end < frames.length) {
            while (end > 0 && isReflection(frames[end - 1].getClassName())) {
                end--;
            }
            t.setStackTrace(Arrays.copyOf(frames, end));
        }
        cut(t.getCause(), seen);
        for (Throwable s : t.getSuppressed()) {
            cut(s, seen);
        }
    }

    private static boolean isReflection(String className) {
        return className.startsWith("jdk.internal.reflect.") || className.startsWith("java.lang.reflect.")
                || className.startsWith("java.lang.invoke.") || className.startsWith("sun.reflect.");
    }
}
