// JEP 512 main methods (JDK 25): instance and no-argument mains, and the launcher's refusals.
class Instance { void main() { System.out.println("instance main() of " + getClass().getName()); } }

class Base { protected void main(String[] a) { System.out.println("inherited main in " + getClass().getName() + " " + a.length); } }

class Derived extends Base { }

abstract class Abstract { void main() { System.out.println("never"); } }

class PrivateConstructor { private PrivateConstructor() { } void main() { System.out.println("never"); } }

class PrivateMain { private static void main(String[] a) { System.out.println("never"); } }

class ArgsWin { static void main() { System.out.println("main()"); } void main(String[] a) { System.out.println("main(String[])"); } }

interface Greets { default void main() { System.out.println("a default main of " + getClass().getName()); } }

class FromInterface implements Greets { }

class Outer { class Inner { void main() { System.out.println("never"); } } }

class Throws { void main() { throw new IllegalStateException("from an instance main"); } }
