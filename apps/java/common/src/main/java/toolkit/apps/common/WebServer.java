package toolkit.apps.common;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;

/**
 * A minimal JSON HTTP server on top of com.sun.net.httpserver: regex routes, JSON responses,
 * {@code GET /live} (liveness: the HTTP loop answers) and {@code GET /health} (readiness: runs
 * the registered dependency checks).
 *
 * <p>Life cycle: STARTING (routes and /health answer 503 with {@code X-Instance-State: starting})
 * → READY → DRAINING ({@link #drain()}: /health answers 503 "draining", routes are still served but
 * every response says {@code Connection: close} and {@code X-Instance-State: draining}, so clients
 * move to other instances) → STOPPED ({@link #stop(int)}: new requests get 503 "draining", in-flight
 * ones finish, then the listener closes).
 */
public final class WebServer {
    private static final Logger LOG = Log.get(WebServer.class);
    private static final int MAX_BODY = 1 << 20;

    /** Response header telling clients that this instance is not taking work (starting or draining). */
    public static final String STATE_HEADER = "X-Instance-State";

    /** Life-cycle state of the instance. */
    public enum State { STARTING, READY, DRAINING, STOPPED }

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
    // Routes are added after start() (the port opens before the dependencies are connected).
    private final List<Route> routes = new CopyOnWriteArrayList<Route>();
    private final Map<String, Check> checks = new LinkedHashMap<String, Check>();
    private volatile State state = State.STARTING;
    private final AtomicInteger inFlight = new AtomicInteger();
    // One listener per BIND_ADDRESS entry (a single wildcard listener without it), sharing the executor.
    private final List<HttpServer> servers = new ArrayList<HttpServer>();
    private ExecutorService executor;
    private int port;

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
        if (state == State.STARTING || state == State.READY) {
            state = ready ? State.READY : State.STARTING;
        }
    }

    public State state() {
        return state;
    }

    /** The port listened on (useful after {@code start(0)}). */
    public int port() {
        return port;
    }

    /** Requests being handled by a route right now. */
    public int inFlight() {
        return inFlight.get();
    }

    /**
     * Stops reporting ready: /health answers 503 "draining"; requests are still served (each
     * response closes its connection and carries {@code X-Instance-State: draining}).
     */
    public void drain() {
        if (state != State.STOPPED) {
            state = State.DRAINING;
        }
    }

    /**
     * The addresses to listen on: {@code BIND_ADDRESS}, one address or a comma-separated list (IPv6 literals
     * may be bracketed); unset or empty means every interface (an empty list here).
     */
    static List<InetAddress> bindAddresses() {
        String value = Env.get("BIND_ADDRESS", "");
        List<InetAddress> out = new ArrayList<InetAddress>();
        if (value.isEmpty()) {
            return out;
        }
        for (String part : value.split(",", -1)) {
            String address = part.trim();
            if (address.startsWith("[") && address.endsWith("]")) {
                address = address.substring(1, address.length() - 1);
            }
            if (address.isEmpty()) {
                throw new Env.ConfigException("environment variable BIND_ADDRESS: empty address in '" + value + "'");
            }
            try {
                out.add(InetAddress.getByName(address));
            } catch (UnknownHostException e) {
                throw new Env.ConfigException("environment variable BIND_ADDRESS: unknown address '" + address + "'");
            }
        }
        return out;
    }

    /** Opens the port on every BIND_ADDRESS (every interface without it); port 0 picks one for all of them. */
    public void start(int port) throws IOException {
        List<InetAddress> addresses = bindAddresses();
        executor = Executors.newFixedThreadPool(Env.getInt("HTTP_THREADS", 16));
        HttpHandler handler = new HttpHandler() {
            @Override
            public void handle(HttpExchange ex) throws IOException {
                dispatch(ex);
            }
        };
        int actual = port;
        List<String> where = new ArrayList<String>();
        try {
            for (InetAddress address : addresses.isEmpty() ? Collections.<InetAddress>singletonList(null) : addresses) {
                HttpServer server = HttpServer.create(
                        address == null ? new InetSocketAddress(actual) : new InetSocketAddress(address, actual), 128);
                actual = server.getAddress().getPort();
                server.setExecutor(executor);
                server.createContext("/", handler);
                servers.add(server);
                where.add(address == null ? "every interface" : address.getHostAddress());
            }
        } catch (IOException e) {
            for (HttpServer server : servers) {
                server.stop(0);
            }
            servers.clear();
            executor.shutdownNow();
            throw e;
        }
        for (HttpServer server : servers) {
            server.start();
        }
        this.port = actual;
        LOG.info("{} listening on port {} ({})", name, this.port, String.join(", ", where));
    }

    /**
     * Stops taking work: new requests get 503 "draining" (clients retry them elsewhere: they were
     * certainly not processed), requests already in a handler finish (up to {@code graceSeconds}),
     * then the listener and every connection close. Returns once the server is closed.
     */
    public void stop(int graceSeconds) {
        state = State.STOPPED;
        long start = System.nanoTime();
        long deadline = start + graceSeconds * 1_000_000_000L;
        // Let requests racing with the state change (and clients that just learnt it) settle:
        // at least 500 ms of 503 answers before the port closes.
        long earliest = start + 500_000_000L;
        try {
            while (System.nanoTime() < deadline && (inFlight.get() > 0 || System.nanoTime() < earliest)) {
                Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (inFlight.get() > 0) {
            LOG.warn("{}: {} request(s) still running after {} s, closing anyway", name, inFlight.get(), graceSeconds);
        }
        for (HttpServer server : servers) {
            server.stop(0);
        }
        if (executor != null) {
            executor.shutdown();
            try {
                executor.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Stops at once (in-flight requests get up to 1 s). */
    public void stop() {
        stop(1);
    }

    private void dispatch(HttpExchange ex) throws IOException {
        // Counted from the first moment so that stop() waits for every request that saw the old state.
        inFlight.incrementAndGet();
        try {
            handleExchange(ex);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private void handleExchange(HttpExchange ex) throws IOException {
        Response resp;
        String method = ex.getRequestMethod().toUpperCase();
        String path = ex.getRequestURI().getPath();
        if (path.length() > 1 && path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        State st = state;
        boolean probe = method.equals("GET") || method.equals("HEAD");
        String refused = null; // "starting" / "draining" when the request was turned away unprocessed
        try {
            if (path.equals("/live") && probe) {
                resp = Response.json(200, Json.obj("status", "alive"));
            } else if (path.equals("/health") && probe) {
                resp = health(st);
            } else if (st == State.STOPPED) {
                refused = "draining";
                resp = Response.error(503, name + " is draining");
            } else if (st == State.STARTING) {
                // before the routes are registered too: never a 404 from an instance that is starting
                refused = "starting";
                resp = Response.error(503, name + " is starting");
            } else {
                Route r = find(method, path);
                if (r == null) {
                    resp = pathKnown(path) ? Response.error(405, "method not allowed") : Response.error(404, "not found");
                } else {
                    Matcher m = r.pattern.matcher(path);
                    m.matches();
                    resp = r.handler.handle(new Request(method, path, readBody(ex), m));
                }
            }
        } catch (Json.ParseException e) {
            resp = Response.error(400, "invalid JSON: " + e.getMessage());
        } catch (Exception e) {
            LOG.error("{} {} failed: {}", method, path, Retry.describe(e));
            resp = Response.error(500, "internal error: " + e.getClass().getSimpleName());
        }
        byte[] bytes = resp.body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        State now = state;
        if (refused != null) {
            ex.getResponseHeaders().set(STATE_HEADER, refused);
        } else if (now != State.READY) {
            ex.getResponseHeaders().set(STATE_HEADER, now == State.STARTING ? "starting" : "draining");
        }
        if (now == State.DRAINING || now == State.STOPPED) {
            // No keep-alive to an instance that is going away: the next request opens a new connection.
            ex.getResponseHeaders().set("Connection", "close");
        }
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
        if (!path.equals("/health") && !path.equals("/live")) {
            LOG.info("{} {} -> {}", method, path, resp.status);
        }
    }

    private Route find(String method, String path) {
        for (Route r : routes) {
            if (r.method.equals(method) && r.pattern.matcher(path).matches()) {
                return r;
            }
        }
        return null;
    }

    private boolean pathKnown(String path) {
        for (Route r : routes) {
            if (r.pattern.matcher(path).matches()) {
                return true;
            }
        }
        return false;
    }

    private Response health(State st) {
        if (st == State.STARTING) {
            return Response.json(503, Json.obj("status", "starting"));
        }
        if (st != State.READY) {
            return Response.json(503, Json.obj("status", "draining"));
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
