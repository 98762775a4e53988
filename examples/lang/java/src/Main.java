import java.util.List;
import java.util.function.Function;
import java.util.stream.Collectors;

/** The Java entry of the language matrix: collections, a lambda, formatting, args, env, stderr, exit status. */
public class Main {
    public static void main(String[] args) {
        String name = args.length > 0 ? args[0] : "nobody";
        String greeting = System.getenv().getOrDefault("GREETING", "Hi");
        Function<String, String> greet = who -> greeting + ", " + who + "!";

        List<String> fruits = List.of("pear", "fig", "banana", "apple", "kiwi");
        List<String> kept = fruits.stream()
                .filter(f -> f.length() > 3)
                .map(String::toUpperCase)
                .sorted()
                .collect(Collectors.toList());
        double average = kept.stream().mapToInt(String::length).average().orElse(0);

        System.out.println(greet.apply(name) + " (Java)");
        System.out.println("fruits: " + String.join(", ", kept));
        System.out.println(String.format("average length: %.2f", average));
        System.err.println("Java: exiting with status 3");
        System.exit(3);
    }
}
