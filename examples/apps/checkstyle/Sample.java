/** Checked by Checkstyle inside the VM; it breaks two of the rules in checks.xml on purpose. */
public class Sample {
    private static final int limit = 10;

    public int Twice(int value) {
        if (value > limit) {
            return value;
        }
        return value * 2;
    }
}
