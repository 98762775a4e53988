// Main classes the launcher of JDK 17 refuses or takes (JDK 25 takes more of them): one per class.
class NotStatic { public void main(String[] a) { System.out.println("instance main(String[]) " + a.length); } }

class ReturnsInt { public static int main(String[] a) { return 0; } }

class NoMain { }

class PackageMain { static void main(String[] a) { System.out.println("package-private static main"); } }

class Parent { public static void main(String[] a) { System.out.println("inherited static main " + a.length); } }

class Child extends Parent { }

class BadInit { static final int N = Integer.parseInt("not a number"); public static void main(String[] a) { } }
