/** A java agent for the attach `load` test: records its options in a system property. */
public class TestAgent {
    public static void agentmain(String options) {
        System.setProperty("osvjava.test.agent", options == null ? "" : options);
    }
}
