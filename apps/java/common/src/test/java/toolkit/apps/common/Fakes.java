package toolkit.apps.common;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** Real servers on the loopback interface for the client tests. */
final class Fakes {
    private Fakes() {}

    static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    /** What a fake instance answers. */
    interface Answer {
        void answer(HttpExchange ex, String body) throws IOException;
    }

    static void send(HttpExchange ex, int status, String body, String... headers) throws IOException {
        for (int i = 0; i < headers.length; i += 2) {
            ex.getResponseHeaders().set(headers[i], headers[i + 1]);
        }
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
    }

    /** An HTTP instance counting the requests it received. */
    static final class Instance implements AutoCloseable {
        final HttpServer server;
        final AtomicInteger requests = new AtomicInteger();
        final List<String> bodies = new ArrayList<String>();

        Instance(final Answer answer) throws IOException {
            server = HttpServer.create(new InetSocketAddress(LOOPBACK, 0), 16);
            server.createContext("/", ex -> {
                String body;
                try (InputStream in = ex.getRequestBody()) {
                    body = new String(readAll(in), StandardCharsets.UTF_8);
                }
                synchronized (bodies) {
                    bodies.add(body);
                }
                requests.incrementAndGet();
                answer.answer(ex, body);
                ex.close();
            });
            server.start();
        }

        String url() {
            return "http://127.0.0.1:" + server.getAddress().getPort();
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }

    /** An instance answering 200 with its own name. */
    static Instance ok(final String name) throws IOException {
        return new Instance((ex, body) -> send(ex, 200, "{\"from\":\"" + name + "\"}"));
    }

    static byte[] readAll(InputStream in) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        byte[] buf = new byte[4096];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    /** A URL whose port refuses connections. */
    static String closedUrl() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, LOOPBACK)) {
            return "http://127.0.0.1:" + s.getLocalPort();
        }
    }

    /**
     * A listening socket whose accept queue is full and never drained: the kernel drops new SYNs,
     * so a connect times out (a host that does not answer, without leaving the loopback).
     */
    static final class Blackhole implements AutoCloseable {
        final ServerSocket server;
        final List<Socket> fillers = new ArrayList<Socket>();

        Blackhole() throws IOException {
            server = new ServerSocket(0, 1, LOOPBACK);
            for (int i = 0; i < 16; i++) {
                Socket s = new Socket();
                try {
                    s.connect(new InetSocketAddress(LOOPBACK, server.getLocalPort()), 300);
                    fillers.add(s);
                } catch (SocketTimeoutException e) {
                    s.close();
                    return;
                }
            }
            throw new IllegalStateException("could not fill the accept queue");
        }

        String url() {
            return "http://127.0.0.1:" + server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            for (Socket s : fillers) {
                s.close();
            }
            server.close();
        }
    }

    /**
     * Accepts connections, reads the request head (and so maybe processes it), then closes the
     * connection without answering: a crash after the request arrived.
     */
    static final class Hangup implements AutoCloseable {
        final ServerSocket server;
        final AtomicInteger connections = new AtomicInteger();
        final Thread thread;

        Hangup() throws IOException {
            server = new ServerSocket(0, 16, LOOPBACK);
            thread = new Thread(() -> {
                while (!server.isClosed()) {
                    try (Socket s = server.accept()) {
                        connections.incrementAndGet();
                        InputStream in = s.getInputStream();
                        int state = 0;
                        int c;
                        while (state < 4 && (c = in.read()) >= 0) {
                            state = (c == '\r' || c == '\n') ? state + 1 : 0;
                        }
                    } catch (IOException e) {
                        // closed
                    }
                }
            }, "hangup");
            thread.setDaemon(true);
            thread.start();
        }

        String url() {
            return "http://127.0.0.1:" + server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }

    /** Counts TCP connections and answers each request with 200 on a keep-alive connection. */
    static final class CountingServer implements AutoCloseable {
        final ServerSocket server;
        final AtomicInteger connections = new AtomicInteger();

        CountingServer() throws IOException {
            server = new ServerSocket(0, 16, LOOPBACK);
            Thread t = new Thread(() -> {
                while (!server.isClosed()) {
                    try {
                        final Socket s = server.accept();
                        connections.incrementAndGet();
                        Thread h = new Thread(() -> serve(s));
                        h.setDaemon(true);
                        h.start();
                    } catch (IOException e) {
                        // closed
                    }
                }
            }, "counting");
            t.setDaemon(true);
            t.start();
        }

        private static void serve(Socket s) {
            try (Socket sock = s) {
                InputStream in = sock.getInputStream();
                OutputStream out = sock.getOutputStream();
                while (true) {
                    int state = 0;
                    int c = 0;
                    while (state < 4 && (c = in.read()) >= 0) {
                        state = (c == '\r' || c == '\n') ? state + 1 : 0;
                    }
                    if (c < 0) {
                        return;
                    }
                    out.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
                            .getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                }
            } catch (IOException e) {
                // client went away
            }
        }

        String url() {
            return "http://127.0.0.1:" + server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
