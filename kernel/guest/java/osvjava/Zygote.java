package osvjava;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A JVM that has started and waits for its app: a machine saved here restores with the JVM's own
 * start already done, and any app of the same runtime and options runs in it.
 *
 * <p>Arguments: the FIFO the launch comes on, the file to create once waiting (the ready point), and
 * for a language runtime's script the runtime's main class, initialised before (see initialise).
 * The launch is NUL-terminated UTF-8 strings: the class path, the main class, what the launcher's
 * command names (the main class, or the jar given to -jar), then the app's arguments.
 * The class path goes onto the system class loader (as if given with -cp: the app's classes, its
 * resources and its manifest Class-Path come from the same loader as in a plain start), then main
 * runs on this thread. What differs from `java -cp CP MAIN`: the JVM's start time and options are the
 * saved machine's, and its options hold the --add-opens this class needs to extend the class path.
 * A JVM started with the app's class path and this class's folder after it (one that maps an archive
 * made for that class path) has it already: then nothing is appended and no --add-opens is needed.
 */
public final class Zygote {
    private Zygote() {}

    public static void main(String[] args) throws Throwable {
        Path fifo = Path.of(args[0]);
        ClassLoader system = ClassLoader.getSystemClassLoader();
        String startedWith = System.getProperty("java.class.path");
        Method append = null;  // looked up before the wait: no run pays for it
        try {
            append = system.getClass().getDeclaredMethod("appendToClassPathForInstrumentation", String.class);
            append.setAccessible(true);
        } catch (RuntimeException e) {
            // no --add-opens: a JVM started with the app's class path, which needs none
        }
        try {
            warmUp(Path.of(args[1] + ".jar"));
        } catch (Exception | LinkageError e) {
            // only time is lost: the app's start does the same work
        }
        String preloaded = args.length > 2 ? args[2] : null;
        Throwable preloadFailure = preloaded == null ? null : initialise(preloaded, system);
        Files.createFile(Path.of(args[1]));
        List<String> launch = read(fifo);
        String classPath = launch.get(0);
        String mainName = launch.get(1);
        String[] appArgs = launch.subList(3, launch.size()).toArray(new String[0]);
        if (preloadFailure != null && mainName.equals(preloaded)) {
            throw withoutOurFrames(preloadFailure);  // as the launcher's start of main would have failed
        }

        // A JVM that maps an archive made for the app's class path starts with it, this class's folder after it
        int own = startedWith.lastIndexOf(File.pathSeparatorChar);
        if (own < 0 || !startedWith.substring(0, own).equals(classPath)) {
            if (append == null) {
                throw new IllegalStateException("osvjava.Zygote: started without --add-opens "
                    + "java.base/jdk.internal.loader=ALL-UNNAMED, it cannot add " + classPath + " to the class path");
            }
            for (String entry : classPath.split(File.pathSeparator, -1)) {
                append.invoke(system, entry.isEmpty() ? "." : entry);  // an empty entry is the working folder
            }
        }
        System.setProperty("java.class.path", classPath);
        System.setProperty("sun.java.command", String.join(" ", launch.subList(2, launch.size())));

        Entry entry = entry(system, mainName, appArgs);
        try {
            entry.call();
        } catch (InvocationTargetException e) {
            throw withoutOurFrames(e.getCause());
        } catch (ExceptionInInitializerError e) {
            throw withoutOurFrames(e);
        }
    }

    /**
     * Initialise a language runtime's main class (on the class path the zygote started with), as the
     * launcher does right before main: Clojure's loads clojure.core there, seconds of every run under
     * emulation. A failure is kept, to be thrown as the launch's.
     */
    private static Throwable initialise(String name, ClassLoader loader) {
        try {
            Class.forName(name, true, loader);
            return null;
        } catch (Throwable failure) {
            return failure;
        }
    }

    /**
     * What nearly every app's start needs of the JDK, done here once so that no run pays it again:
     * a class and a resource read from a jar through a class loader (zip, manifest, code source,
     * verification), a reflective call like the one to main, a lambda, string concatenation, number
     * formatting (the default locale's data), a regular expression and a stream. The app sees none of it: the jar is a scratch
     * file, removed, read by a loader of its own; nothing is printed, no thread is started (it would
     * take a thread number), and nothing seeds a random generator (a temporary file's name would).
     */
    private static void warmUp(Path jar) throws Exception {
        byte[] classFile;
        try (InputStream in = Zygote.class.getResourceAsStream("Zygote$Entry.class")) {
            classFile = in.readAllBytes();
        }
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        try {
            try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), manifest)) {
                out.putNextEntry(new JarEntry("osvjava/Zygote$Entry.class"));
                out.write(classFile);
            }
            try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
                Class.forName(Entry.class.getName(), true, loader).getDeclaredConstructors();
                try (InputStream in = loader.getResourceAsStream("META-INF/MANIFEST.MF")) {
                    in.readAllBytes();
                }
            }
        } finally {
            Files.deleteIfExists(jar);
        }
        Zygote.class.getDeclaredMethod("warmCall", String[].class).invoke(null, (Object) new String[] {"x"});
        Runnable lambda = () -> { };
        lambda.run();
        String text = "" + System.nanoTime() + ' ' + 1.5 + lambda.getClass().isSynthetic();
        String.format("%s %d %.2f %x%n", text, 1L << 40, Math.PI, 255);
        Pattern.compile("([a-z]+)\\d*").matcher(text).find();
        Stream.of(text, "y").map(String::trim).filter(t -> !t.isEmpty()).collect(Collectors.toList());
    }

    /** A static method that takes the app's arguments, called by reflection as main is. */
    private static void warmCall(String[] args) {
        args[0] = args[0].trim();
    }

    /**
     * The app's main method with its arguments (and, for an instance main, the constructor of the
     * object it runs on). A class, not a lambda: a lambda's first call site costs the JVM a hidden
     * class spun at launch, under software emulation tens of milliseconds.
     */
    private static final class Entry {
        private final Method main;
        private final Constructor<?> make;
        private final Object[] passed;

        Entry(Method main, Constructor<?> make, Object[] passed) {
            this.main = main;
            this.make = make;
            this.passed = passed;
        }

        void call() throws Throwable {
            MainCalled.mark();
            main.invoke(make == null ? null : make.newInstance(), passed);
        }
    }

    /**
     * Initialised right before main is called, so -Xlog:class+init dates the call (PID 1's bootchart):
     * a script runtime's main class was initialised before the snapshot and cannot date it.
     */
    private static final class MainCalled {
        static void mark() {
        }
    }

    /**
     * The launcher's choice of main method and its errors (same words, status 1): on JDK 17 to 24 a
     * public static void main(String[]) (inherited ones too); from JDK 25 also the main methods of
     * JEP 512: a non-private main(String[]) or, failing that, main(), static or on a new instance.
     */
    private static Entry entry(ClassLoader loader, String name, String[] args) throws Throwable {
        Class<?> mainClass;
        try {
            mainClass = Class.forName(name, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            abort("Error: Could not find or load main class " + name, "Caused by: " + e);
            throw new AssertionError(e);
        }
        Method main = Runtime.version().feature() >= 25 ? flexibleMain(mainClass) : classicMain(mainClass);
        main.setAccessible(true);  // the app's class, or its main, need not be public
        Object[] passed = main.getParameterCount() == 0 ? new Object[0] : new Object[] {args};
        if (Modifier.isStatic(main.getModifiers())) {
            return new Entry(main, null, passed);
        }
        String declaring = main.getDeclaringClass().getName();
        if (Modifier.isAbstract(mainClass.getModifiers())) {
            abort("Error: abstract class " + declaring + " can not be instantiated", "please use a concrete class");
        }
        if (mainClass.isMemberClass() && !Modifier.isStatic(mainClass.getModifiers())) {
            abort("Error: non-static inner class " + declaring + " constructor can not be invoked ",
                  "make inner class static or move inner class out to separate source file");
        }
        Constructor<?> constructor = null;
        try {
            constructor = mainClass.getDeclaredConstructor();
        } catch (NoSuchMethodException e) {
            // below
        }
        if (constructor == null || Modifier.isPrivate(constructor.getModifiers())) {
            abort("Error: no non-private zero argument constructor found in class " + declaring,
                  "remove private from existing constructor or define as:",
                  "   public " + declaring + "()");
        }
        constructor.setAccessible(true);
        return new Entry(main, constructor, passed);
    }

    private static Method classicMain(Class<?> mainClass) {
        Method main;
        try {
            main = mainClass.getMethod("main", String[].class);
        } catch (NoSuchMethodException e) {
            throw notFound(mainClass);
        }
        if (!Modifier.isStatic(main.getModifiers())) {
            abort("Error: Main method is not static in class " + main.getDeclaringClass().getName()
                  + ", please define the main method as:", "   public static void main(String[] args)");
        }
        if (main.getReturnType() != void.class) {
            abort("Error: Main method must return a value of type void in class " + main.getDeclaringClass().getName()
                  + ", please ", "define the main method as:", "   public static void main(String[] args)");
        }
        return main;
    }

    private static Method flexibleMain(Class<?> mainClass) {
        Method main = null;
        try {
            main = mainClass.getMethod("main", String[].class);
        } catch (NoSuchMethodException e) {
            main = declaredInHierarchy(mainClass, String[].class);
        }
        if (main == null || !valid(main)) {
            main = declaredInHierarchy(mainClass);
        }
        if (main == null || !valid(main)) {
            throw notFound(mainClass);
        }
        return main;
    }

    private static boolean valid(Method main) {
        return main.getReturnType() == void.class && !Modifier.isPrivate(main.getModifiers());
    }

    /** main(params) of the class or a superclass (the nearest), else a default method of their interfaces. */
    private static Method declaredInHierarchy(Class<?> mainClass, Class<?>... params) {
        for (Class<?> c = mainClass; c != null; c = c.getSuperclass()) {
            try {
                return c.getDeclaredMethod("main", params);
            } catch (NoSuchMethodException e) {
                // the superclass next
            }
        }
        for (Class<?> c = mainClass; c != null; c = c.getSuperclass()) {
            Method inherited = defaultIn(c.getInterfaces(), params);
            if (inherited != null) {
                return inherited;
            }
        }
        return null;
    }

    private static Method defaultIn(Class<?>[] interfaces, Class<?>... params) {
        for (Class<?> i : interfaces) {
            try {
                Method m = i.getDeclaredMethod("main", params);
                if (!Modifier.isStatic(m.getModifiers())) {
                    return m;
                }
            } catch (NoSuchMethodException e) {
                // its superinterfaces next
            }
            Method deeper = defaultIn(i.getInterfaces(), params);
            if (deeper != null) {
                return deeper;
            }
        }
        return null;
    }

    private static Error notFound(Class<?> mainClass) {
        abort("Error: Main method not found in class " + mainClass.getName() + ", please define the main method as:",
              "   public static void main(String[] args)",
              "or a JavaFX application class must extend javafx.application.Application");
        return new AssertionError(mainClass);
    }

    /** The launcher's way out: its message on stderr, status 1. */
    private static void abort(String... lines) {
        for (String line : lines) {
            System.err.println(line);
        }
        System.exit(1);
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
        while (end > 0 && isOurs(frames[end - 1].getClassName())) {
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

    private static boolean isOurs(String className) {
        return className.equals(Zygote.class.getName()) || className.startsWith(Zygote.class.getName() + "$");
    }

    private static boolean isReflection(String className) {
        return className.startsWith("jdk.internal.reflect.") || className.startsWith("java.lang.reflect.")
                || className.startsWith("java.lang.invoke.") || className.startsWith("sun.reflect.")
                // Class.forName below a preloaded class's initialiser; JDK 25's reflection initialises
                // the class of the method it calls through Unsafe
                || className.equals("java.lang.Class") || className.equals("jdk.internal.misc.Unsafe");
    }
}
