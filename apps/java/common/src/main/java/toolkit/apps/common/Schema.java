package toolkit.apps.common;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.Map;

/**
 * Tables of the reference stack, in SQL that PostgreSQL and MariaDB both accept (only the
 * generated-id column type differs, see {@link Db#idColumn()}). Shared because billing updates
 * the orders table that the orders service owns.
 */
public final class Schema {
    private Schema() {}

    public static String products() {
        return "CREATE TABLE IF NOT EXISTS products ("
                + "id BIGINT PRIMARY KEY, "
                + "name VARCHAR(200) NOT NULL, "
                + "price_cents BIGINT NOT NULL)";
    }

    public static String orders(Db db) {
        return "CREATE TABLE IF NOT EXISTS orders ("
                + "id " + db.idColumn() + ", "
                + "product_id BIGINT NOT NULL, "
                + "quantity INTEGER NOT NULL, "
                + "total_cents BIGINT NOT NULL, "
                + "status VARCHAR(20) NOT NULL, "
                + "created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)";
    }

    public static String invoices(Db db) {
        return "CREATE TABLE IF NOT EXISTS invoices ("
                + "id " + db.idColumn() + ", "
                + "order_id BIGINT NOT NULL UNIQUE, "
                + "amount_cents BIGINT NOT NULL, "
                + "created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)";
    }

    /** Redis key of a cached order. */
    public static String orderKey(long id) {
        return "order:" + id;
    }

    /** The order row as JSON, or null when there is no such order. */
    public static String orderJson(Connection c, long id) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT id, product_id, quantity, total_cents, status, created_at FROM orders WHERE id = ?")) {
            ps.setLong(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                Map<String, Object> o = Json.obj(
                        "id", rs.getLong("id"),
                        "product_id", rs.getLong("product_id"),
                        "quantity", rs.getInt("quantity"),
                        "total_cents", rs.getLong("total_cents"),
                        "status", rs.getString("status"),
                        "created_at", timestamp(rs.getTimestamp("created_at")));
                return Json.write(o);
            }
        }
    }

    /** Timestamps are written as ISO-8601 local date-times (the database's clock). */
    public static String timestamp(Timestamp ts) {
        return ts == null ? null : ts.toLocalDateTime().toString();
    }
}
