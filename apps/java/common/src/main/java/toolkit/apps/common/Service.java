package toolkit.apps.common;

import org.slf4j.Logger;

/** Start-up helpers shared by the three services. */
public final class Service {
    private static final Logger LOG = Log.get(Service.class);

    private Service() {}

    /** How long a service waits for its dependencies at start-up (STARTUP_TIMEOUT_SECONDS, default 300). */
    public static int startupTimeout() {
        return Env.getInt("STARTUP_TIMEOUT_SECONDS", 300);
    }

    /** Connects to the database, retrying, and creates the tables. */
    public static Db database() throws Exception {
        final Db db = Db.fromEnv();
        LOG.info("database: {}", db.describe());
        Retry.until("database", startupTimeout(), () -> {
            db.ping();
            return null;
        });
        return db;
    }

    public static Redis redis() throws Exception {
        final Redis redis = Redis.fromEnv();
        LOG.info("cache: {}", redis.describe());
        Retry.until("redis", startupTimeout(), () -> {
            redis.ping();
            return null;
        });
        return redis;
    }

    public static MessageQueue queue(boolean producer) throws Exception {
        final MessageQueue q = MessageQueue.fromEnv(producer);
        LOG.info("queue: {}", q.describe());
        Retry.until("queue", startupTimeout(), () -> {
            q.connect();
            return null;
        });
        return q;
    }

    /** Logs a start-up failure and exits non-zero (the supervisor restarts the service). */
    public static void fail(String name, Throwable e) {
        LOG.error("{} failed to start: {}", name, Retry.describe(e));
        System.exit(1);
    }

    /** Parses a path id, or returns null when it is not a positive long. */
    public static Long id(String s) {
        try {
            long v = Long.parseLong(s);
            return v > 0 ? v : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
