package toolkit.apps.common;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import org.slf4j.Logger;

/**
 * Client of another app that runs as several instances ({@code <APP>_URLS}), with failover.
 *
 * <p>Each call starts at a rotating instance (load spreads) and moves on to the next one when an
 * instance certainly did not process the request: the connection was refused, timed out while
 * connecting, or the instance answered 503 with {@code X-Instance-State: starting|draining}.
 * A GET (idempotent) also moves on after any other 503 and after a connection that broke before
 * the response (not after a read timeout: a slow instance is not retried elsewhere). A POST is
 * never repeated once it may have reached a working instance.
 *
 * <p>An instance that failed or said it is draining is tried last for {@code downMs}; it is
 * still tried when the others fail. With a single URL (e.g. a Kubernetes Service) the call is
 * tried twice, so that a connection refused by one terminating pod is retried on another.
 */
public final class Upstream {
    private static final Logger LOG = Log.get(Upstream.class);

    /** How a failed call ended: no instance could take it. */
    public static final class UnreachableException extends IOException {
        private static final long serialVersionUID = 1L;

        UnreachableException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** One attempt (for tests): instance index and outcome. */
    interface Transport {
        HttpJson.Result send(String method, String url, String body, int connectTimeoutMs, int readTimeoutMs)
                throws IOException;
    }

    private final String app;
    private final List<String> urls;
    private final String source;
    private final int connectTimeoutMs;
    private final int readTimeoutMs;
    private final long downMs;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicLongArray downUntil;
    private Transport transport = HttpJson::request;

    /**
     * @param app name of the called app (for messages)
     * @param urls base URLs of its instances, without trailing slash
     * @param connectTimeoutMs connect timeout per attempt, ms
     * @param readTimeoutMs response timeout per attempt, ms
     * @param downMs how long an instance that failed is tried last, ms
     */
    public Upstream(String app, List<String> urls, int connectTimeoutMs, int readTimeoutMs, long downMs) {
        this(app, urls, null, connectTimeoutMs, readTimeoutMs, downMs);
    }

    private Upstream(String app, List<String> urls, String source, int connectTimeoutMs, int readTimeoutMs,
                     long downMs) {
        if (urls.isEmpty()) {
            throw new IllegalArgumentException("no URL for " + app);
        }
        this.app = app;
        this.urls = new ArrayList<String>(urls);
        this.source = source;
        this.connectTimeoutMs = connectTimeoutMs;
        this.readTimeoutMs = readTimeoutMs;
        this.downMs = downMs;
        this.downUntil = new AtomicLongArray(urls.size());
    }

    /**
     * Reads {@code <APP>_URLS} (or the deprecated {@code <APP>_URL}, else {@code def}),
     * UPSTREAM_CONNECT_TIMEOUT_MS (1000), UPSTREAM_TIMEOUT_MS (5000), UPSTREAM_DOWN_MS (2000).
     */
    public static Upstream fromEnv(String app, String def) {
        String many = Env.urlsVariable(app);
        String one = many.substring(0, many.length() - 1);
        String source = !Env.list(many).isEmpty() ? many : !Env.list(one).isEmpty() ? one + " (deprecated)" : "default";
        return new Upstream(app, Env.urls(app, def), source,
                Env.getInt("UPSTREAM_CONNECT_TIMEOUT_MS", 1000, 1), Env.getInt("UPSTREAM_TIMEOUT_MS", 5000, 1),
                Env.getInt("UPSTREAM_DOWN_MS", 2000, 0));
    }

    void setTransport(Transport t) {
        this.transport = t;
    }

    public List<String> urls() {
        return new ArrayList<String>(urls);
    }

    public String describe() {
        return app + " " + urls + (source == null ? "" : " from " + source);
    }

    public HttpJson.Result get(String path) throws IOException {
        return call("GET", path, null);
    }

    public HttpJson.Result post(String path, String json) throws IOException {
        return call("POST", path, json);
    }

    /** Instance indexes in the order the next call tries them (advances the rotation). */
    int[] order(long nowMs) {
        int n = urls.size();
        int start = Math.floorMod(next.getAndIncrement(), n);
        int attempts = Math.max(n, 2);
        int[] out = new int[attempts];
        int k = 0;
        // healthy instances first, in rotation order; then the ones that failed recently
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < n; i++) {
                int idx = (start + i) % n;
                boolean down = downUntil.get(idx) > nowMs;
                if ((pass == 0) != down) {
                    out[k++] = idx;
                }
            }
        }
        while (k < attempts) {
            out[k] = out[k - n];
            k++;
        }
        return out;
    }

    private void markDown(int idx, String why) {
        long now = System.currentTimeMillis();
        long was = downUntil.getAndSet(idx, now + downMs);
        if (was <= now) {
            LOG.warn("{} instance {} unavailable ({}); trying the other instances first for {} ms",
                    app, urls.get(idx), why, downMs);
        }
    }

    private void markUp(int idx) {
        downUntil.set(idx, 0);
    }

    /**
     * Sends the request to one instance after the other until one takes it.
     *
     * @return the first response that is not a refusal; when every instance refused with a 503,
     *     the last of those 503 responses
     * @throws UnreachableException when no instance could be reached
     * @throws IOException when the request failed after it may have been processed (POST), or
     *     timed out waiting for the response
     */
    HttpJson.Result call(String method, String path, String body) throws IOException {
        boolean idempotent = method.equals("GET") || method.equals("HEAD");
        HttpJson.Result last503 = null;
        IOException lastError = null;
        for (int idx : order(System.currentTimeMillis())) {
            String url = urls.get(idx) + path;
            HttpJson.Result r;
            try {
                r = transport.send(method, url, body, connectTimeoutMs, readTimeoutMs);
            } catch (HttpJson.NotSentException e) {
                markDown(idx, Retry.describe(e.getCause() == null ? e : e.getCause()));
                lastError = e;
                continue;
            } catch (SocketTimeoutException e) {
                throw e; // read timeout: the instance is slow, not gone; do not pile the call onto another
            } catch (IOException e) {
                if (!idempotent) {
                    throw e; // may have been processed
                }
                markDown(idx, Retry.describe(e));
                lastError = e;
                continue;
            }
            if (r.refusedByInstance()) {
                markDown(idx, r.instanceState);
                last503 = r;
                continue;
            }
            if (r.status == 503 && idempotent) {
                last503 = r;
                continue;
            }
            if ("draining".equals(r.instanceState)) {
                markDown(idx, "draining"); // answered, but about to go away
            } else {
                markUp(idx);
            }
            return r;
        }
        if (last503 != null) {
            return last503;
        }
        throw new UnreachableException(app + " unreachable (" + urls.size() + " instance(s)): "
                + (lastError == null ? "no attempt" : lastError.getMessage()), lastError);
    }
}
