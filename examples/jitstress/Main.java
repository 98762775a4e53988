import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Stress for the JIT compilers' code patching: ROUNDS rounds (default 12), each loading a fresh copy
 * of {@code Work} and its classes in a class loader of its own and running it on THREADS threads at
 * once (default 3), CALLS megamorphic calls per thread, phase and group of three receivers (default 60000). Garbage is collected
 * every few rounds so old copies unload and their compiled code is freed and reused.
 *
 *     java -jar jitstress.jar [ROUNDS [THREADS [CALLS]]]
 *
 * Prints one line, "jitstress: ROUNDS rounds on THREADS threads, checksum N", and exits 0. The
 * checksum does not depend on timing or on which code ran (interpreted, C1 or C2).
 */
public final class Main {
    /** What a fresh copy of Work does; this interface stays in the application class loader. */
    public interface Task {
        long run(int thread, int calls);
    }

    /** Defines every class whose name starts with "Work" itself, from the bytes in the jar. */
    static final class Fresh extends ClassLoader {
        Fresh(ClassLoader parent) {
            super(parent);
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            if (!name.startsWith("Work")) {
                return super.loadClass(name, resolve);
            }
            synchronized (getClassLoadingLock(name)) {
                Class<?> c = findLoadedClass(name);
                if (c == null) {
                    byte[] b = bytes(name.replace('.', '/') + ".class");
                    c = defineClass(name, b, 0, b.length);
                }
                return c;
            }
        }

        private byte[] bytes(String resource) throws ClassNotFoundException {
            try (InputStream in = getParent().getResourceAsStream(resource)) {
                if (in == null) {
                    throw new ClassNotFoundException(resource);
                }
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                in.transferTo(out);
                return out.toByteArray();
            } catch (IOException e) {
                throw new ClassNotFoundException(resource, e);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 12;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int calls = args.length > 2 ? Integer.parseInt(args[2]) : 60_000;
        long checksum = 0;
        for (int round = 0; round < rounds; round++) {
            Task task = (Task) new Fresh(Main.class.getClassLoader()).loadClass("Work")
                    .getDeclaredConstructor().newInstance();
            long[] sums = new long[threads];
            Thread[] workers = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                int id = t;
                workers[t] = new Thread(() -> sums[id] = task.run(id, calls), "jitstress-" + t);
                workers[t].start();
            }
            for (int t = 0; t < threads; t++) {
                workers[t].join();
                checksum = checksum * 31 + sums[t];
            }
            if (round % 4 == 3) {
                System.gc();
            }
        }
        System.out.println("jitstress: " + rounds + " rounds on " + threads + " threads, checksum " + checksum);
    }
}
