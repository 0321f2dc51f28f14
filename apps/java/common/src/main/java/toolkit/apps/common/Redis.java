package toolkit.apps.common;

import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisPool;
import redis.clients.jedis.JedisPoolConfig;

/** Redis access through a Jedis pool. Reads REDIS_HOST, REDIS_PORT, REDIS_PASSWORD. */
public final class Redis implements AutoCloseable {
    private final JedisPool pool;
    private final String host;
    private final int port;
    private final boolean hasPassword;

    public Redis(String host, int port, String password) {
        this.host = host;
        this.port = port;
        this.hasPassword = password != null;
        JedisPoolConfig cfg = new JedisPoolConfig();
        cfg.setMaxTotal(16);
        cfg.setMaxIdle(8);
        cfg.setMinIdle(0);
        cfg.setJmxEnabled(false);
        // Validate pooled connections (PING) so a Redis restart does not surface as errors.
        cfg.setTestOnBorrow(true);
        this.pool = new JedisPool(cfg, host, port, 3000, password);
    }

    public static Redis fromEnv() {
        return new Redis(Env.get("REDIS_HOST", "localhost"), Env.getInt("REDIS_PORT", 6379),
                Env.secret("REDIS_PASSWORD"));
    }

    public String describe() {
        return "redis " + host + ":" + port + " password=" + (hasPassword ? "set" : "unset");
    }

    public String get(String key) {
        try (Jedis j = pool.getResource()) {
            return j.get(key);
        }
    }

    public void set(String key, String value, long ttlSeconds) {
        try (Jedis j = pool.getResource()) {
            if (ttlSeconds > 0) {
                j.setex(key, ttlSeconds, value);
            } else {
                j.set(key, value);
            }
        }
    }

    /** Health check: PING answers PONG. */
    public void ping() {
        try (Jedis j = pool.getResource()) {
            String r = j.ping();
            if (!"PONG".equalsIgnoreCase(r)) {
                throw new IllegalStateException("unexpected PING reply " + r);
            }
        }
    }

    @Override
    public void close() {
        pool.close();
    }
}
