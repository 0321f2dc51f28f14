package toolkit.apps.common;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.net.ConnectException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.nio.file.Files;
import org.junit.Test;

/** Runs {@link DemoService} in a child JVM (the same java as the tests) and sends it SIGTERM. */
public class ShutdownTest {

    /**
     * A child JVM whose output goes to a file (Process.destroy() closes the parent's ends of the
     * pipes, so what the child logs while shutting down would be lost on a pipe).
     */
    static final class Child {
        final Process process;
        final File log;
        int port = -1;

        Child(String mode, String... env) throws IOException {
            String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
            String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
            ProcessBuilder pb = new ProcessBuilder(java, "-cp", cp, DemoService.class.getName(), mode);
            log = File.createTempFile("demo-service", ".log");
            log.deleteOnExit();
            pb.redirectErrorStream(true);
            pb.redirectOutput(log);
            Map<String, String> e = pb.environment();
            e.put("PORT", "0");
            for (int i = 0; i < env.length; i += 2) {
                e.put(env[i], env[i + 1]);
            }
            process = pb.start();
        }

        String out() throws IOException {
            return new String(Files.readAllBytes(log.toPath()), StandardCharsets.UTF_8);
        }

        void awaitPort() throws Exception {
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (port < 0 && System.nanoTime() < end && process.isAlive()) {
                for (String line : out().split("\n")) {
                    if (line.startsWith("PORT=")) {
                        port = Integer.parseInt(line.substring(5).trim());
                    }
                }
                Thread.sleep(20);
            }
            assertTrue("child did not start:\n" + out(), port > 0);
        }

        String url(String path) {
            return "http://127.0.0.1:" + port + path;
        }

        int waitFor(int seconds) throws Exception {
            assertTrue("child still running after " + seconds + " s:\n" + out(), process.waitFor(seconds, TimeUnit.SECONDS));
            return process.exitValue();
        }
    }

    /** Status, X-Instance-State and Connection headers of a GET. */
    static String[] get(String url) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(1000);
        c.setReadTimeout(5000);
        int status = c.getResponseCode();
        String[] r = {String.valueOf(status), c.getHeaderField(WebServer.STATE_HEADER), c.getHeaderField("Connection")};
        (status >= 400 ? c.getErrorStream() : c.getInputStream()).close();
        return r;
    }

    @Test
    public void sigtermDrainsThenClosesAndExitsZero() throws Exception {
        Child child = new Child("ready", "SHUTDOWN_DRAIN_SECONDS", "2");
        child.awaitPort();
        assertEquals("200", get(child.url("/health"))[0]);
        assertEquals("200", get(child.url("/x"))[0]);

        long t0 = System.nanoTime();
        child.process.destroy(); // SIGTERM
        // /health turns 503 draining at once
        String[] h = null;
        for (int i = 0; i < 50; i++) {
            h = get(child.url("/health"));
            if (h[0].equals("503")) {
                break;
            }
            Thread.sleep(20);
        }
        assertEquals("503", h[0]);
        assertEquals("draining", h[1]);
        assertEquals("200", get(child.url("/live"))[0]);
        // requests are still served during the drain period, without keep-alive
        String[] x = get(child.url("/x"));
        assertEquals("200", x[0]);
        assertEquals("draining", x[1]);
        assertEquals("close", x[2]);

        // a slow request that starts shortly before the listener closes still completes
        while (System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(1700)) {
            Thread.sleep(10);
        }
        final AtomicReference<String> slow = new AtomicReference<String>();
        Thread t = new Thread(() -> {
            try {
                slow.set(get(child.url("/slow"))[0]);
            } catch (IOException e) {
                slow.set(e.toString());
            }
        });
        t.start();

        // after the drain: new requests are refused (503 draining, then connection refused)
        while (System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(2300)) {
            Thread.sleep(10);
        }
        boolean refused = false;
        for (int i = 0; i < 100 && !refused; i++) {
            try {
                String[] r = get(child.url("/x"));
                assertEquals("503", r[0]);
                assertEquals("draining", r[1]);
                Thread.sleep(50);
            } catch (ConnectException e) {
                refused = true;
            }
        }
        assertTrue("the port closes after the drain", refused);
        t.join(5000);
        assertEquals("in-flight request completed", "200", slow.get());
        assertEquals("exit status\n" + child.out(), 0, child.waitFor(15));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue("stopped in " + ms + " ms", ms >= 2000 && ms < 6000);
        assertTrue(child.out(), child.out().contains("stop requested"));
        assertTrue(child.out(), child.out().contains("demo stopped after"));
    }

    @Test
    public void sigtermWhileStartingExitsZeroWithoutDrain() throws Exception {
        Child child = new Child("starting", "SHUTDOWN_DRAIN_SECONDS", "10");
        child.awaitPort();
        String[] h = get(child.url("/health"));
        assertEquals("503", h[0]);
        assertEquals("starting", h[1]);
        String[] x = get(child.url("/x"));
        assertEquals("503", x[0]);
        assertEquals("starting", x[1]);
        // a route that is not registered yet is not a 404 while starting
        x = get(child.url("/registered-later"));
        assertEquals("503", x[0]);
        assertEquals("starting", x[1]);
        long t0 = System.nanoTime();
        child.process.destroy();
        assertEquals(child.out(), 0, child.waitFor(10));
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 4000);
    }

    @Test
    public void badConfigurationExitsTwoNamingTheVariable() throws Exception {
        Child child = new Child("ready", "SHUTDOWN_DRAIN_SECONDS", "soon");
        assertEquals(child.out(), 2, child.waitFor(20));
        assertTrue(child.out(), child.out().contains(
                "demo failed to start: bad configuration: environment variable SHUTDOWN_DRAIN_SECONDS must be an integer"));
        child = new Child("connect", "DB_URL", "jdbc:postgresql://db/shop", "AMQP_ADDRESSES", "mq:x");
        assertEquals(child.out(), 2, child.waitFor(20));
        assertTrue(child.out(), child.out().contains("AMQP_ADDRESSES: bad port in 'mq:x'"));
    }

    @Test
    public void passwordsNeverReachTheLog() throws Exception {
        String odd = "p@ss/w:rd %41#'$ \"x\\";
        String closedDb = Fakes.closedUrl().replace("http://", "");
        String closedMq = Fakes.closedUrl().replace("http://", "");
        Child child = new Child("connect",
                "DB_URL", "jdbc:postgresql://" + closedDb + "/shop",
                "DB_USER", "shop",
                "DB_PASSWORD", odd,
                "REDIS_HOST", "127.0.0.1",
                "REDIS_PORT", closedMq.substring(closedMq.indexOf(':') + 1),
                "REDIS_PASSWORD", odd,
                "QUEUE_KIND", "rabbitmq",
                "AMQP_ADDRESSES", closedMq + "," + closedDb,
                "AMQP_USER", "shop",
                "AMQP_PASSWORD", odd,
                "AMQP_VHOST", "/",
                "CATALOG_URLS", Fakes.closedUrl(),
                "STARTUP_TIMEOUT_SECONDS", "1");
        assertEquals(child.out(), 1, child.waitFor(60));
        String log = child.out();
        assertTrue(log, log.contains("wiring: demo"));
        assertTrue(log, log.contains("password=set"));
        assertTrue(log, log.contains("database failed") && log.contains("queue failed") && log.contains("catalog failed"));
        for (String part : new String[] {odd, "p@ss", "w:rd", "%41#", "p%40ss"}) {
            assertFalse("'" + part + "' in the log:\n" + log, log.contains(part));
        }
        AtomicInteger lines = new AtomicInteger();
        for (String line : log.split("\n")) {
            if (!line.isEmpty()) {
                lines.incrementAndGet();
            }
        }
        if (lines.get() < 5) {
            fail("too little output to judge:\n" + log);
        }
    }
}
