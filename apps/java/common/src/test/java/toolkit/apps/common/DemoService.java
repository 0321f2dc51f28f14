package toolkit.apps.common;

import toolkit.apps.common.WebServer.Response;

/**
 * A service built like catalog/orders/billing but without dependencies, run as a child JVM by
 * {@link ShutdownTest}. Argument: "ready" (ready at once), "starting" (never ready), or
 * "connect" (tries the database, Redis, the queue and catalog from the environment, then fails).
 */
public final class DemoService {
    private DemoService() {}

    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "ready";
        Service.init("demo");
        WebServer web = new WebServer("demo");
        try {
            int port = Env.getInt("PORT", 0);
            if (mode.equals("connect")) {
                final Db db = Db.fromEnv();
                final Redis redis = Redis.fromEnv();
                final MessageQueue queue = MessageQueue.fromEnv(true);
                final Upstream catalog = Upstream.fromEnv("catalog", "http://localhost:8081");
                Service.logWiring(port, "db: " + db.describe(), "cache: " + redis.describe(),
                        "queue: " + queue.describe(), "calls: " + catalog.describe());
                web.start(port);
                Service.installShutdown(web);
                attempt("database", () -> Service.database(db));
                attempt("redis", () -> Service.redis(redis));
                attempt("queue", () -> Service.queue(queue));
                attempt("catalog", () -> catalog.get("/products"));
                throw new IllegalStateException("dependencies missing");
            }
            Service.logWiring(port);
            web.start(port);
            Service.installShutdown(web);
            web.route("GET", "/x", req -> Response.json(200, Json.obj("ok", true)));
            web.route("GET", "/slow", req -> {
                Thread.sleep(1500);
                return Response.json(200, Json.obj("slow", true));
            });
            if (mode.equals("ready")) {
                web.setReady(true);
            }
            System.out.println("PORT=" + web.port()); // the test starts here

        } catch (Throwable e) {
            Service.fail("demo", e);
        }
    }

    private static void attempt(String what, Retry.Step<Object> step) {
        try {
            step.run();
        } catch (Exception e) {
            // Retry.until has logged it, as a real service does
            System.out.println(what + " failed: " + Retry.describe(e));
        }
    }
}
