package toolkit.apps.common;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;

/**
 * A minimal JSON HTTP server on top of com.sun.net.httpserver: regex routes, JSON responses,
 * and a GET /health endpoint that runs the registered dependency checks.
 */
public final class WebServer {
    private static final Logger LOG = Log.get(WebServer.class);
    private static final int MAX_BODY = 1 << 20;

    /** An incoming request. {@code param(i)} is the i-th regex group of the matched route. */
    public static final class Request {
        public final String method;
        public final String path;
        public final String body;
        private final Matcher matcher;

        Request(String method, String path, String body, Matcher matcher) {
            this.method = method;
            this.path = path;
            this.body = body;
            this.matcher = matcher;
        }

        public String param(int group) {
            return matcher.group(group);
        }
    }

    /** A response: status code and a JSON value. */
    public static final class Response {
        public final int status;
        public final String body;

        private Response(int status, String body) {
            this.status = status;
            this.body = body;
        }

        public static Response json(int status, Object value) {
            return new Response(status, Json.write(value));
        }

        /** Body already serialised as JSON (e.g. a value read from the cache). */
        public static Response raw(int status, String json) {
            return new Response(status, json);
        }

        public static Response error(int status, String message) {
            return json(status, Json.obj("error", message));
        }
    }

    /** Route handler. */
    public interface Handler {
        Response handle(Request req) throws Exception;
    }

    /** A dependency check for /health: throws when the dependency does not work. */
    public interface Check {
        void run() throws Exception;
    }

    private static final class Route {
        final String method;
        final Pattern pattern;
        final Handler handler;

        Route(String method, Pattern pattern, Handler handler) {
            this.method = method;
            this.pattern = pattern;
            this.handler = handler;
        }
    }

    private final String name;
    private final List<Route> routes = new ArrayList<Route>();
    private final Map<String, Check> checks = new LinkedHashMap<String, Check>();
    private volatile boolean ready;
    private HttpServer server;
    private ExecutorService executor;

    public WebServer(String name) {
        this.name = name;
    }

    /** Adds a route; {@code regex} must match the whole path, e.g. "/products/(\\d+)". */
    public WebServer route(String method, String regex, Handler handler) {
        routes.add(new Route(method, Pattern.compile(regex), handler));
        return this;
    }

    public WebServer check(String dependency, Check check) {
        checks.put(dependency, check);
        return this;
    }

    /** Until this is called, /health answers 503 "starting" and the other routes 503. */
    public void setReady(boolean ready) {
        this.ready = ready;
    }

    public void start(int port) throws IOException {
        server = HttpServer.create(new InetSocketAddress(port), 128);
        executor = Executors.newFixedThreadPool(Env.getInt("HTTP_THREADS", 16));
        server.setExecutor(executor);
        server.createContext("/", new HttpHandler() {
            @Override
            public void handle(HttpExchange ex) throws IOException {
                dispatch(ex);
            }
        });
        server.start();
        LOG.info("{} listening on port {}", name, port);
    }

    public void stop() {
        if (server != null) {
            server.stop(1);
        }
        if (executor != null) {
            executor.shutdown();
            try {
                executor.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void dispatch(HttpExchange ex) throws IOException {
        Response resp;
        String method = ex.getRequestMethod().toUpperCase();
        String path = ex.getRequestURI().getPath();
        if (path.length() > 1 && path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        try {
            if (path.equals("/health") && (method.equals("GET") || method.equals("HEAD"))) {
                resp = health();
            } else {
                resp = route(ex, method, path);
            }
        } catch (Json.ParseException e) {
            resp = Response.error(400, "invalid JSON: " + e.getMessage());
        } catch (Exception e) {
            LOG.error("{} {} failed: {}", method, path, Retry.describe(e));
            resp = Response.error(500, "internal error: " + e.getClass().getSimpleName());
        }
        byte[] bytes = resp.body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        try {
            if (method.equals("HEAD")) {
                ex.sendResponseHeaders(resp.status, -1);
            } else {
                ex.sendResponseHeaders(resp.status, bytes.length);
                try (OutputStream os = ex.getResponseBody()) {
                    os.write(bytes);
                }
            }
        } finally {
            ex.close();
        }
        if (!path.equals("/health")) {
            LOG.info("{} {} -> {}", method, path, resp.status);
        }
    }

    private Response route(HttpExchange ex, String method, String path) throws Exception {
        boolean pathMatched = false;
        for (Route r : routes) {
            Matcher m = r.pattern.matcher(path);
            if (!m.matches()) {
                continue;
            }
            pathMatched = true;
            if (!r.method.equals(method)) {
                continue;
            }
            if (!ready) {
                return Response.error(503, name + " is starting");
            }
            String body = readBody(ex);
            return r.handler.handle(new Request(method, path, body, m));
        }
        return pathMatched ? Response.error(405, "method not allowed") : Response.error(404, "not found");
    }

    private Response health() {
        if (!ready) {
            return Response.json(503, Json.obj("status", "starting"));
        }
        List<String> failed = new ArrayList<String>();
        Map<String, Object> errors = new LinkedHashMap<String, Object>();
        for (Map.Entry<String, Check> e : checks.entrySet()) {
            try {
                e.getValue().run();
            } catch (Exception ex) {
                failed.add(e.getKey());
                errors.put(e.getKey(), Retry.describe(ex));
            }
        }
        if (failed.isEmpty()) {
            return Response.json(200, Json.obj("status", "ok"));
        }
        LOG.warn("health check failed: {}", errors);
        return Response.json(503, Json.obj("status", "error", "failed", failed, "errors", errors));
    }

    private static String readBody(HttpExchange ex) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
                if (out.size() > MAX_BODY) {
                    throw new IOException("request body too large");
                }
            }
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }
}
