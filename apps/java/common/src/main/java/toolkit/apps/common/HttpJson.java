package toolkit.apps.common;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;

/**
 * A small blocking HTTP client for calling the other services (Java 8: HttpURLConnection).
 * One attempt against one URL; {@link Upstream} adds failover between instances.
 *
 * <p>Connections are kept alive and reused (the JDK's pool). A failure while opening a new
 * connection ({@link NotSentException}) proves that the request never reached the server; a
 * failure on a reused connection does not (the request may have been read), so a POST is then
 * not repeated. Instances that are draining answer {@code Connection: close}, so the pool holds
 * no connection to an instance that is going away.
 */
public final class HttpJson {
    private HttpJson() {}

    /** Status code and body of a response. */
    public static final class Result {
        public final int status;
        public final String body;
        /** Value of the X-Instance-State header ("starting" / "draining"), or null. */
        public final String instanceState;

        Result(int status, String body, String instanceState) {
            this.status = status;
            this.body = body;
            this.instanceState = instanceState;
        }

        Result(int status, String body) {
            this(status, body, null);
        }

        /** A 503 from an instance that is starting or draining: the request was not processed. */
        public boolean refusedByInstance() {
            return status == 503 && ("starting".equals(instanceState) || "draining".equals(instanceState));
        }
    }

    /**
     * The connection could not be opened (refused, connect timeout, unknown host, no route): the
     * request was certainly not processed and may be sent to another instance, even a POST.
     */
    public static final class NotSentException extends IOException {
        private static final long serialVersionUID = 1L;

        NotSentException(String url, IOException cause) {
            super("cannot connect to " + url + ": " + cause, cause);
        }
    }

    /** GET with a 3 s connect timeout and a 5 s read timeout. */
    public static Result get(String url) throws IOException {
        return request("GET", url, null, 3000, 5000);
    }

    /**
     * Sends one request.
     *
     * @param method HTTP method
     * @param url absolute URL
     * @param jsonBody request body (sent as application/json), or null for none
     * @param connectTimeoutMs connect timeout in milliseconds
     * @param readTimeoutMs read timeout in milliseconds (waiting for the response)
     * @return status, body and X-Instance-State of the response (error statuses included)
     * @throws NotSentException when no connection could be opened (request not sent)
     * @throws IOException on any failure after the connection was opened (the request may have
     *     been processed: a non-idempotent request must not be repeated)
     */
    public static Result request(String method, String url, String jsonBody, int connectTimeoutMs, int readTimeoutMs)
            throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(connectTimeoutMs);
        c.setReadTimeout(readTimeoutMs);
        c.setInstanceFollowRedirects(false);
        c.setUseCaches(false);
        c.setRequestMethod(method);
        c.setRequestProperty("Accept", "application/json");
        byte[] body = jsonBody == null ? null : jsonBody.getBytes(StandardCharsets.UTF_8);
        if (body != null) {
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/json; charset=utf-8");
            // Streaming mode: the JDK never re-sends the body by itself (no silent POST retry).
            c.setFixedLengthStreamingMode(body.length);
        }
        try {
            try {
                c.connect();
            } catch (IOException e) {
                throw new NotSentException(url, e);
            }
            if (body != null) {
                try (OutputStream os = c.getOutputStream()) {
                    os.write(body);
                }
            }
            int status = c.getResponseCode();
            InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
            String text = in == null ? "" : read(in);
            return new Result(status, text, c.getHeaderField(WebServer.STATE_HEADER));
        } catch (IOException e) {
            c.disconnect();
            throw e;
        }
    }

    private static String read(InputStream in) throws IOException {
        try (InputStream is = in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = is.read(buf)) > 0) {
                out.write(buf, 0, n);
            }
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }
}
