package toolkit.apps.common;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;

/** Start-up and shutdown helpers shared by the three services. */
public final class Service {
    private static final Logger LOG = Log.get(Service.class);
    /** How long in-flight requests may take to finish once the listener stops taking new ones. */
    static final int FINISH_SECONDS = 5;
    /** Extra time after the drain period before the process halts whatever is still closing. */
    static final int WATCHDOG_EXTRA_SECONDS = 9;

    private static volatile String app = "toolkit-app";
    private static volatile boolean failing;
    private static final List<AutoCloseable> RESOURCES = new CopyOnWriteArrayList<AutoCloseable>();

    private Service() {}

    /** Names this process (the default of SERVICE_NAME). */
    public static void init(String appName) {
        app = appName;
    }

    /** SERVICE_NAME, default the app name: the client name shown by RabbitMQ / Kafka, and in logs. */
    public static String serviceName() {
        return Env.get("SERVICE_NAME", app);
    }

    /** SHUTDOWN_DRAIN_SECONDS (default 5, at least 0). */
    public static int drainSeconds() {
        return Env.getInt("SHUTDOWN_DRAIN_SECONDS", 5, 0);
    }

    /**
     * Logs the effective wiring in one line, e.g.
     * {@code wiring: catalog (SERVICE_NAME=catalog-1) port=8081; db: postgresql jdbc:... user=shop password=set; ...}.
     * Each part must already be free of secrets (the describe() methods never include passwords).
     */
    public static void logWiring(int port, String... parts) {
        StringBuilder b = new StringBuilder();
        b.append(app).append(" (SERVICE_NAME=").append(serviceName()).append(") port=").append(port);
        b.append(" drain=").append(drainSeconds()).append("s java=").append(System.getProperty("java.version"));
        for (String p : parts) {
            b.append("; ").append(p);
        }
        LOG.info("wiring: {}", b);
    }

    /** Closes {@code r} at shutdown (resources close in the reverse order of registration). */
    public static <T extends AutoCloseable> T closeOnExit(T r) {
        RESOURCES.add(r);
        return r;
    }

    /**
     * Installs the graceful shutdown (SIGTERM, SIGINT): /health turns 503 "draining" at once,
     * requests are served for SHUTDOWN_DRAIN_SECONDS (skipped when the service never became
     * ready), then the listener stops taking requests, in-flight ones finish (up to 5 s), the
     * resources close, and the process exits with status 0. A watchdog halts the process
     * {@value #WATCHDOG_EXTRA_SECONDS} s after the drain period whatever is still closing.
     */
    public static void installShutdown(final WebServer web) {
        final int drain = drainSeconds();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> shutdown(web, drain, true), "shutdown"));
    }

    static void shutdown(WebServer web, int drain, boolean halt) {
        if (failing) {
            closeAll();
            return; // keep the exit status of System.exit(1)
        }
        final long t0 = System.nanoTime();
        boolean wasReady = web.state() == WebServer.State.READY;
        web.drain();
        LOG.info("{}: stop requested; /health now 'draining', serving requests for {} s", serviceName(),
                wasReady ? drain : 0);
        if (halt) {
            Thread watchdog = new Thread(() -> {
                try {
                    Thread.sleep((drain + WATCHDOG_EXTRA_SECONDS) * 1000L);
                } catch (InterruptedException e) {
                    return;
                }
                LOG.warn("shutdown still running after {} s: halting", drain + WATCHDOG_EXTRA_SECONDS);
                System.out.flush();
                Runtime.getRuntime().halt(0);
            }, "shutdown-watchdog");
            watchdog.setDaemon(true);
            watchdog.start();
        }
        if (wasReady && drain > 0) {
            try {
                Thread.sleep(drain * 1000L);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        LOG.info("closing the HTTP listener ({} request(s) in flight)", web.inFlight());
        web.stop(FINISH_SECONDS);
        closeAll();
        LOG.info("{} stopped after {} ms", serviceName(), (System.nanoTime() - t0) / 1_000_000L);
        System.out.flush();
        System.err.flush();
        if (halt) {
            // A JVM ended by SIGTERM exits with 143; a planned stop is a success.
            Runtime.getRuntime().halt(0);
        }
    }

    private static void closeAll() {
        List<AutoCloseable> rs = new ArrayList<AutoCloseable>(RESOURCES);
        RESOURCES.clear();
        for (int i = rs.size() - 1; i >= 0; i--) {
            try {
                rs.get(i).close();
            } catch (Exception e) {
                LOG.warn("closing {}: {}", rs.get(i).getClass().getSimpleName(), Retry.describe(e));
            }
        }
    }

    /** How long a service waits for its dependencies at start-up (STARTUP_TIMEOUT_SECONDS, default 300). */
    public static int startupTimeout() {
        return Env.getInt("STARTUP_TIMEOUT_SECONDS", 300);
    }

    /** Connects to the database, retrying. */
    public static Db database(final Db db) throws Exception {
        closeOnExit(db);
        Retry.until("database", startupTimeout(), () -> {
            db.ping();
            return null;
        });
        return db;
    }

    /** Connects to Redis, retrying. */
    public static Redis redis(final Redis redis) throws Exception {
        closeOnExit(redis);
        Retry.until("redis", startupTimeout(), () -> {
            redis.ping();
            return null;
        });
        return redis;
    }

    /** Connects to the queue, retrying. */
    public static MessageQueue queue(final MessageQueue q) throws Exception {
        closeOnExit(q);
        Retry.until("queue", startupTimeout(), () -> {
            q.connect();
            return null;
        });
        return q;
    }

    /**
     * Logs a start-up failure and exits non-zero: 2 for a bad configuration (see
     * {@link Env.ConfigException}), 1 otherwise (the supervisor restarts the service).
     */
    public static void fail(String name, Throwable e) {
        boolean config = e instanceof Env.ConfigException;
        LOG.error("{} failed to start: {}", name, config ? "bad configuration: " + e.getMessage() : Retry.describe(e));
        failing = true;
        System.exit(config ? 2 : 1);
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
