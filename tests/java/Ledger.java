import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;

/**
 * Test helper for a database on a volume (H2 on the class path):
 * `write URL` commits one row per transaction (id 1, 2, ...), printing "committed ID" after each
 * commit, until killed; `count URL` prints the number of rows and the highest id.
 */
public class Ledger {
    public static void main(String[] args) throws Exception {
        try (Connection db = DriverManager.getConnection(args[1], "sa", "")) {
            if (args[0].equals("count")) {
                try (Statement st = db.createStatement();
                     ResultSet rs = st.executeQuery("SELECT COUNT(*), COALESCE(MAX(ID), 0) FROM LEDGER")) {
                    rs.next();
                    System.out.println(rs.getLong(1) + " " + rs.getLong(2));
                }
                return;
            }
            try (Statement st = db.createStatement()) {
                st.execute("CREATE TABLE LEDGER (ID BIGINT PRIMARY KEY, NOTE VARCHAR(100))");
            }
            db.setAutoCommit(false);
            try (PreparedStatement insert = db.prepareStatement("INSERT INTO LEDGER VALUES (?, ?)")) {
                for (long id = 1; ; id++) {
                    insert.setLong(1, id);
                    insert.setString(2, "entry " + id);
                    insert.executeUpdate();
                    db.commit();
                    System.out.println("committed " + id);
                    System.out.flush();
                }
            }
        }
    }
}
