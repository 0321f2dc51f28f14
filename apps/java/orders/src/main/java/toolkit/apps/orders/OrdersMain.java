package toolkit.apps.orders;

import java.io.IOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Map;
import org.slf4j.Logger;
import toolkit.apps.common.Db;
import toolkit.apps.common.Env;
import toolkit.apps.common.HttpJson;
import toolkit.apps.common.Json;
import toolkit.apps.common.Log;
import toolkit.apps.common.MessageQueue;
import toolkit.apps.common.Redis;
import toolkit.apps.common.Retry;
import toolkit.apps.common.Schema;
import toolkit.apps.common.Service;
import toolkit.apps.common.Upstream;
import toolkit.apps.common.WebServer;
import toolkit.apps.common.WebServer.Request;
import toolkit.apps.common.WebServer.Response;

/**
 * orders: POST /orders prices the order with catalog, stores it (table orders), caches it in
 * Redis (order:{id}) and publishes it to the queue for billing. GET /orders/{id}.
 */
public final class OrdersMain {
    private static final Logger LOG = Log.get(OrdersMain.class);
    private static final int MAX_QUANTITY = 1000;

    private final Db db;
    private final Redis redis;
    private final MessageQueue queue;
    private final Upstream catalog;
    private final int cacheTtl = Env.getInt("ORDER_CACHE_TTL_SECONDS", 86400);

    OrdersMain(Db db, Redis redis, MessageQueue queue, Upstream catalog) {
        this.catalog = catalog;
        this.db = db;
        this.redis = redis;
        this.queue = queue;
    }

    public static void main(String[] args) {
        Service.init("orders");
        WebServer web = new WebServer("orders");
        try {
            int port = Env.getInt("PORT", 8082);
            Db dbConfig = Db.fromEnv();
            Redis redisConfig = Redis.fromEnv();
            MessageQueue queueConfig = MessageQueue.fromEnv(true);
            Upstream catalog = Upstream.fromEnv("catalog", "http://localhost:8081");
            Service.logWiring(port, "db: " + dbConfig.describe(), "cache: " + redisConfig.describe(),
                    "queue: " + queueConfig.describe(), "calls: " + catalog.describe());
            web.start(port);
            Service.installShutdown(web);
            Db db = Service.database(dbConfig);
            Retry.until("schema", 60, () -> {
                db.execute(Schema.orders(db));
                return null;
            });
            Redis redis = Service.redis(redisConfig);
            MessageQueue queue = Service.queue(queueConfig);
            OrdersMain app = new OrdersMain(db, redis, queue, catalog);
            web.check("db", db::ping).check("redis", redis::ping).check("queue", queue::ping);
            web.route("POST", "/orders", app::create);
            web.route("GET", "/orders/([^/]+)", req -> app.get(req.param(1)));
            web.setReady(true);
            LOG.info("orders ready");
        } catch (Throwable e) {
            Service.fail("orders", e);
        }
    }

    Response create(Request req) throws Exception {
        Map<String, Object> in = Json.parseObject(req.body);
        Long productId = Json.getLong(in, "product_id");
        Long quantity = Json.getLong(in, "quantity");
        if (productId == null || productId <= 0) {
            return Response.error(400, "product_id must be a positive integer");
        }
        if (quantity == null || quantity <= 0 || quantity > MAX_QUANTITY) {
            return Response.error(400, "quantity must be an integer between 1 and " + MAX_QUANTITY);
        }

        // 1. price it with catalog
        HttpJson.Result r;
        try {
            r = catalog.get("/products/" + productId);
        } catch (IOException e) {
            LOG.warn("catalog unreachable: {}", Retry.describe(e));
            return Response.error(502, "catalog unreachable");
        }
        if (r.status == 404) {
            return Response.error(400, "unknown product_id " + productId);
        }
        if (r.status != 200) {
            return Response.error(502, "catalog answered " + r.status);
        }
        Long price = Json.getLong(Json.parseObject(r.body), "price_cents");
        if (price == null) {
            return Response.error(502, "catalog returned no price");
        }
        final long total = price * quantity;

        // 2. store it
        final long pid = productId;
        final int qty = quantity.intValue();
        final long[] idHolder = new long[1];
        String json = db.with(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO orders (product_id, quantity, total_cents, status) VALUES (?, ?, ?, 'created')",
                    new String[] {"id"})) {
                ps.setLong(1, pid);
                ps.setInt(2, qty);
                ps.setLong(3, total);
                ps.executeUpdate();
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    if (!keys.next()) {
                        throw new SQLException("no generated id returned");
                    }
                    idHolder[0] = keys.getLong(1);
                }
            }
            return Schema.orderJson(c, idHolder[0]);
        });
        final long id = idHolder[0];

        // 3. cache it
        cache(id, json);

        // 4. hand it to billing
        try {
            queue.publish(String.valueOf(id), json);
        } catch (Exception e) {
            LOG.error("publishing order {} failed: {}", id, Retry.describe(e));
            db.with(c -> {
                try (PreparedStatement ps = c.prepareStatement("UPDATE orders SET status = 'publish_failed' WHERE id = ?")) {
                    ps.setLong(1, id);
                    ps.executeUpdate();
                }
                return null;
            });
            return Response.json(503, Json.obj("error", "order stored but could not be queued", "id", id));
        }
        LOG.info("order {} created: product {} x{} = {} cents", id, pid, qty, total);
        return Response.raw(201, json);
    }

    Response get(String rawId) throws SQLException {
        final Long id = Service.id(rawId);
        if (id == null) {
            return Response.error(404, "order not found");
        }
        try {
            String cached = redis.get(Schema.orderKey(id));
            if (cached != null) {
                return Response.raw(200, cached);
            }
        } catch (RuntimeException e) {
            LOG.warn("redis read failed, using the database: {}", Retry.describe(e));
        }
        String json = db.with(c -> Schema.orderJson(c, id));
        if (json == null) {
            return Response.error(404, "order not found");
        }
        cache(id, json);
        return Response.raw(200, json);
    }

    private void cache(long id, String json) {
        try {
            redis.set(Schema.orderKey(id), json, cacheTtl);
        } catch (RuntimeException e) {
            LOG.warn("redis write failed for order {}: {}", id, Retry.describe(e));
        }
    }
}
