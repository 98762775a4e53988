import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Test helper: `read FILE` prints a file; `write FILE TEXT` writes one; `delete FILE` removes one. */
public class FileTool {
    public static void main(String[] args) throws Exception {
        for (int i = 0; i + 1 < args.length; ) {
            String op = args[i++];
            Path path = Path.of(args[i++]);
            switch (op) {
                case "read" -> System.out.print(Files.readString(path));
                case "write" -> {
                    Files.createDirectories(path.toAbsolutePath().getParent());
                    Files.writeString(path, args[i++]);
                }
                case "delete" -> Files.delete(path);
                case "list" -> {
                    try (Stream<Path> s = Files.walk(path)) {
                        s.sorted().forEach(p -> System.out.println(path.relativize(p)));
                    }
                }
                default -> throw new IllegalArgumentException(op);
            }
        }
    }
}
