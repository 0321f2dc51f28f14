package toolkit.apps.billing;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Map;
import org.slf4j.Logger;
import toolkit.apps.common.Db;
import toolkit.apps.common.Env;
import toolkit.apps.common.Json;
import toolkit.apps.common.Log;
import toolkit.apps.common.MessageQueue;
import toolkit.apps.common.Redis;
import toolkit.apps.common.Retry;
import toolkit.apps.common.Schema;
import toolkit.apps.common.Service;
import toolkit.apps.common.WebServer;
import toolkit.apps.common.WebServer.Response;

/**
 * billing: consumes the orders queue; for each order writes one invoice (table invoices,
 * idempotent on order_id) and marks the order 'billed' (database and Redis cache).
 * GET /invoices/{order_id}.
 */
public final class BillingMain {
    private static final Logger LOG = Log.get(BillingMain.class);

    private final Db db;
    private final Redis redis;
    private final int cacheTtl = Env.getInt("ORDER_CACHE_TTL_SECONDS", 86400);

    BillingMain(Db db, Redis redis) {
        this.db = db;
        this.redis = redis;
    }

    public static void main(String[] args) {
        Service.init("billing");
        WebServer web = new WebServer("billing");
        try {
            int port = Env.getInt("PORT", 8083);
            Db dbConfig = Db.fromEnv();
            Redis redisConfig = Redis.fromEnv();
            MessageQueue queueConfig = MessageQueue.fromEnv(false);
            Service.logWiring(port, "db: " + dbConfig.describe(), "cache: " + redisConfig.describe(),
                    "queue: " + queueConfig.describe());
            web.start(port);
            Service.installShutdown(web);
            Db db = Service.database(dbConfig);
            Retry.until("schema", 60, () -> {
                // orders is owned by the orders service; created here too so billing may start first.
                db.execute(Schema.orders(db), Schema.invoices(db));
                return null;
            });
            Redis redis = Service.redis(redisConfig);
            MessageQueue queue = Service.queue(queueConfig);
            BillingMain app = new BillingMain(db, redis);
            web.check("db", db::ping).check("redis", redis::ping).check("queue", queue::ping);
            web.route("GET", "/invoices/([^/]+)", req -> app.invoice(req.param(1)));
            queue.consume(app::bill);
            web.setReady(true);
            LOG.info("billing ready");
        } catch (Throwable e) {
            Service.fail("billing", e);
        }
    }

    /** Handles one order message. Safe to run twice for the same order. */
    void bill(String body) throws Exception {
        Map<String, Object> order;
        try {
            order = Json.parseObject(body);
        } catch (Json.ParseException e) {
            throw new MessageQueue.PoisonMessage("not JSON: " + e.getMessage());
        }
        final Long orderId = Json.getLong(order, "id");
        final Long amount = Json.getLong(order, "total_cents");
        if (orderId == null || amount == null) {
            throw new MessageQueue.PoisonMessage("order message without id/total_cents");
        }
        String json = db.with(c -> {
            boolean created = true;
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO invoices (order_id, amount_cents) VALUES (?, ?)")) {
                ps.setLong(1, orderId);
                ps.setLong(2, amount);
                ps.executeUpdate();
            } catch (SQLException e) {
                if (!Db.isDuplicate(e)) {
                    throw e;
                }
                created = false;
            }
            try (PreparedStatement ps = c.prepareStatement("UPDATE orders SET status = 'billed' WHERE id = ?")) {
                ps.setLong(1, orderId);
                ps.executeUpdate();
            }
            LOG.info(created ? "order {} billed: {} cents" : "order {} was already invoiced ({} cents)", orderId, amount);
            return Schema.orderJson(c, orderId);
        });
        if (json != null) {
            try {
                redis.set(Schema.orderKey(orderId), json, cacheTtl);
            } catch (RuntimeException e) {
                LOG.warn("redis write failed for order {}: {}", orderId, Retry.describe(e));
            }
        }
    }

    Response invoice(String rawId) throws SQLException {
        final Long orderId = Service.id(rawId);
        if (orderId == null) {
            return Response.error(404, "invoice not found");
        }
        String json = db.with(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, order_id, amount_cents, created_at FROM invoices WHERE order_id = ?")) {
                ps.setLong(1, orderId);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return null;
                    }
                    return Json.write(Json.obj(
                            "id", rs.getLong("id"),
                            "order_id", rs.getLong("order_id"),
                            "amount_cents", rs.getLong("amount_cents"),
                            "created_at", Schema.timestamp(rs.getTimestamp("created_at"))));
                }
            }
        });
        return json == null ? Response.error(404, "invoice not found") : Response.raw(200, json);
    }
}
