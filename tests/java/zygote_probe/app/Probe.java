package app;

import java.io.*;
import java.net.URL;
import java.util.*;

public class Probe {
    static class Boom { static int v = Integer.parseInt("x"); }

    public static void main(String[] args) throws Exception {
        String what = args.length > 0 ? args[0] : "props";
        switch (what) {
            case "props" -> {
                System.out.println("args " + Arrays.toString(args));
                System.out.println("cp " + System.getProperty("java.class.path"));
                System.out.println("cmd " + System.getProperty("sun.java.command"));
                URL m = ClassLoader.getSystemResource("META-INF/MANIFEST.MF");
                System.out.println("manifest " + m);
                System.out.println("self " + Probe.class.getProtectionDomain().getCodeSource().getLocation());
                System.out.println("loader " + (Probe.class.getClassLoader() == ClassLoader.getSystemClassLoader()));
                System.out.println("tccl " + (Thread.currentThread().getContextClassLoader() == ClassLoader.getSystemClassLoader()));
                System.out.println("bysystem " + ClassLoader.getSystemClassLoader().loadClass("app.Probe").getName());
                System.out.println("pkg " + Probe.class.getPackage().getImplementationTitle());
                System.out.println("dep " + Class.forName("dep.Dep").getName());
            }
            case "throw" -> {
                try { Integer.parseInt("nope"); } catch (NumberFormatException e) { throw new IllegalStateException("wrapped", e); }
            }
            case "exit" -> System.exit(Integer.parseInt(args[1]));
            case "init" -> System.out.println(Boom.v);
            case "stdin" -> System.out.println("read " + new BufferedReader(new InputStreamReader(System.in)).readLine());
            case "thread" -> { Thread t = new Thread(() -> { try { Thread.sleep(300); } catch (InterruptedException e) {} System.out.println("late thread"); }); t.start(); System.out.println("main done"); }
        }
    }
}
