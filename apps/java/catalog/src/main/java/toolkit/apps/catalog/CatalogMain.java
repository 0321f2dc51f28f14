package toolkit.apps.catalog;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import toolkit.apps.common.Db;
import toolkit.apps.common.Env;
import toolkit.apps.common.Json;
import toolkit.apps.common.Log;
import toolkit.apps.common.Redis;
import toolkit.apps.common.Retry;
import toolkit.apps.common.Schema;
import toolkit.apps.common.Service;
import toolkit.apps.common.WebServer;
import toolkit.apps.common.WebServer.Response;

/**
 * catalog: the product list. Table products, seeded with 3 products; GET /products,
 * GET /products/{id} (cached in Redis as product:{id}).
 */
public final class CatalogMain {
    private static final Logger LOG = Log.get(CatalogMain.class);

    private static final Object[][] SEED = {
        {1L, "Coffee mug", 1299L},
        {2L, "T-shirt", 1999L},
        {3L, "Sticker pack", 499L},
    };

    private final Db db;
    private final Redis redis;
    private final int cacheTtl = Env.getInt("PRODUCT_CACHE_TTL_SECONDS", 300);

    CatalogMain(Db db, Redis redis) {
        this.db = db;
        this.redis = redis;
    }

    public static void main(String[] args) {
        Service.init("catalog");
        WebServer web = new WebServer("catalog");
        try {
            int port = Env.getInt("PORT", 8081);
            Db dbConfig = Db.fromEnv();
            Redis redisConfig = Redis.fromEnv();
            Service.logWiring(port, "db: " + dbConfig.describe(), "cache: " + redisConfig.describe());
            web.start(port);
            Service.installShutdown(web);
            Db db = Service.database(dbConfig);
            Retry.until("schema", 60, () -> {
                db.execute(Schema.products());
                seed(db);
                return null;
            });
            Redis redis = Service.redis(redisConfig);
            CatalogMain app = new CatalogMain(db, redis);
            web.check("db", db::ping).check("redis", redis::ping);
            web.route("GET", "/products", req -> Response.raw(200, app.list()));
            web.route("GET", "/products/([^/]+)", req -> app.one(req.param(1)));
            web.setReady(true);
            LOG.info("catalog ready");
        } catch (Throwable e) {
            Service.fail("catalog", e);
        }
    }

    /** Inserts the demo products when the table is empty (safe with several replicas starting at once). */
    static void seed(Db db) throws SQLException {
        db.with(c -> {
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM products")) {
                rs.next();
                if (rs.getLong(1) > 0) {
                    return null;
                }
            }
            for (Object[] p : SEED) {
                try (PreparedStatement ps = c.prepareStatement(
                        "INSERT INTO products (id, name, price_cents) VALUES (?, ?, ?)")) {
                    ps.setLong(1, (Long) p[0]);
                    ps.setString(2, (String) p[1]);
                    ps.setLong(3, (Long) p[2]);
                    ps.executeUpdate();
                } catch (SQLException e) {
                    if (!Db.isDuplicate(e)) {
                        throw e;
                    }
                }
            }
            LOG.info("seeded {} products", SEED.length);
            return null;
        });
    }

    private static Map<String, Object> product(ResultSet rs) throws SQLException {
        return Json.obj("id", rs.getLong("id"), "name", rs.getString("name"), "price_cents", rs.getLong("price_cents"));
    }

    String list() throws SQLException {
        return db.with(c -> {
            List<Object> out = new ArrayList<Object>();
            try (Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT id, name, price_cents FROM products ORDER BY id")) {
                while (rs.next()) {
                    out.add(product(rs));
                }
            }
            return Json.write(out);
        });
    }

    Response one(String rawId) throws SQLException {
        final Long id = Service.id(rawId);
        if (id == null) {
            return Response.error(404, "product not found");
        }
        String key = "product:" + id;
        try {
            String cached = redis.get(key);
            if (cached != null) {
                return Response.raw(200, cached);
            }
        } catch (RuntimeException e) {
            LOG.warn("redis read failed, using the database: {}", Retry.describe(e));
        }
        String json = db.with(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT id, name, price_cents FROM products WHERE id = ?")) {
                ps.setLong(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Json.write(product(rs)) : null;
                }
            }
        });
        if (json == null) {
            return Response.error(404, "product not found");
        }
        try {
            redis.set(key, json, cacheTtl);
        } catch (RuntimeException e) {
            LOG.warn("redis write failed: {}", Retry.describe(e));
        }
        return Response.raw(200, json);
    }
}
