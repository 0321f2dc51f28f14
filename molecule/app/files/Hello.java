// Smallest Java HTTP service for the java_app scenario: GET /health answers 200 "ok",
// GET / answers the GREETING environment variable. Compiled with --release 8.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;

public class Hello {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/health", ex -> reply(ex, "ok"));
        server.createContext("/", ex -> reply(ex, System.getenv().getOrDefault("GREETING", "hello")));
        server.start();
    }

    private static void reply(HttpExchange ex, String body) throws java.io.IOException {
        byte[] bytes = (body + "\n").getBytes("UTF-8");
        ex.sendResponseHeaders(200, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }
}
