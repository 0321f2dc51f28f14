package toolkit.apps.common;

import java.net.HttpURLConnection;
import java.net.URL;

/**
 * Command-line probe for container health checks (no curl needed in the image):
 * {@code java -cp app.jar toolkit.apps.common.Probe [/health|/live]} exits 0 when
 * {@code http://127.0.0.1:$PORT<path>} answers 200, else 1.
 */
public final class Probe {
    private Probe() {}

    public static void main(String[] args) {
        String path = args.length > 0 ? args[0] : "/health";
        int status;
        try {
            int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8080").trim());
            HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:" + port + path).openConnection();
            c.setConnectTimeout(2000);
            c.setReadTimeout(5000);
            status = c.getResponseCode();
        } catch (Exception e) {
            System.out.println("probe failed: " + e);
            System.exit(1);
            return;
        }
        System.out.println(path + " -> " + status);
        System.exit(status == 200 ? 0 : 1);
    }
}
