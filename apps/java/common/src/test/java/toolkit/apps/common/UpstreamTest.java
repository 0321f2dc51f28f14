package toolkit.apps.common;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.util.Arrays;
import java.util.Collections;
import org.junit.Test;

public class UpstreamTest {

    private static Upstream upstream(String... urls) {
        return new Upstream("catalog", Arrays.asList(urls), 500, 3000, 60_000);
    }

    @Test
    public void rotatesTheFirstInstanceAndTriesEachOnce() {
        Upstream u = upstream("http://a", "http://b", "http://c");
        assertArrayEquals(new int[] {0, 1, 2}, u.order(0));
        assertArrayEquals(new int[] {1, 2, 0}, u.order(0));
        assertArrayEquals(new int[] {2, 0, 1}, u.order(0));
        assertArrayEquals(new int[] {0, 1, 2}, u.order(0));
        // a single URL (a load-balanced name) is tried twice
        assertArrayEquals(new int[] {0, 0}, upstream("http://svc").order(0));
    }

    @Test
    public void spreadsLoadAndSurvivesAStoppedInstance() throws Exception {
        try (Fakes.Instance a = Fakes.ok("a"); Fakes.Instance b = Fakes.ok("b")) {
            String closed = Fakes.closedUrl();
            Upstream u = upstream(a.url(), b.url(), closed);
            for (int i = 0; i < 30; i++) {
                HttpJson.Result r = i % 2 == 0 ? u.get("/products/1") : u.post("/orders", "{\"n\":" + i + "}");
                assertEquals(200, r.status);
            }
            assertEquals(30, a.requests.get() + b.requests.get());
            assertTrue("load spread: " + a.requests + "/" + b.requests, a.requests.get() >= 10 && b.requests.get() >= 10);
        }
    }

    @Test
    public void failedInstanceIsTriedLastForAWhile() throws Exception {
        try (Fakes.Instance a = Fakes.ok("a")) {
            final int[] attemptsOnDead = {0};
            final String dead = Fakes.closedUrl();
            Upstream u = upstream(dead, a.url());
            u.setTransport((m, url, body, ct, rt) -> {
                if (url.startsWith(dead)) {
                    attemptsOnDead[0]++;
                }
                return HttpJson.request(m, url, body, ct, rt);
            });
            for (int i = 0; i < 10; i++) {
                assertEquals(200, u.get("/x").status);
            }
            assertEquals("the dead instance is tried once, then last", 1, attemptsOnDead[0]);
            assertEquals(10, a.requests.get());
        }
    }

    @Test
    public void postMovesOnAfterConnectTimeout() throws Exception {
        try (Fakes.Blackhole hole = new Fakes.Blackhole(); Fakes.Instance a = Fakes.ok("a")) {
            Upstream u = upstream(hole.url(), a.url());
            long t0 = System.nanoTime();
            HttpJson.Result r = u.post("/orders", "{}");
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(200, r.status);
            assertEquals(1, a.requests.get());
            assertTrue("connect timeout of 500 ms, took " + ms, ms >= 400 && ms < 2500);
        }
    }

    @Test
    public void postMovesOnAfter503FromAStartingOrDrainingInstance() throws Exception {
        try (Fakes.Instance starting = new Fakes.Instance((ex, body) -> Fakes.send(ex, 503,
                "{\"error\":\"starting\"}", WebServer.STATE_HEADER, "starting"));
             Fakes.Instance draining = new Fakes.Instance((ex, body) -> Fakes.send(ex, 503,
                "{\"error\":\"draining\"}", WebServer.STATE_HEADER, "draining"));
             Fakes.Instance a = Fakes.ok("a")) {
            Upstream u = upstream(starting.url(), draining.url(), a.url());
            assertEquals("{\"from\":\"a\"}", u.post("/orders", "{\"q\":1}").body);
            assertEquals(Collections.singletonList("{\"q\":1}"), a.bodies);
            assertEquals(1, starting.requests.get());
            assertEquals(1, draining.requests.get());
        }
    }

    @Test
    public void postIsNotRepeatedAfterA503FromAWorkingInstance() throws Exception {
        // orders answers 503 when the order was stored but not queued: it was processed.
        try (Fakes.Instance busy = new Fakes.Instance((ex, body) -> Fakes.send(ex, 503, "{\"id\":7}"));
             Fakes.Instance a = Fakes.ok("a")) {
            Upstream u = upstream(busy.url(), a.url());
            HttpJson.Result r = u.post("/orders", "{}");
            assertEquals(503, r.status);
            assertEquals("{\"id\":7}", r.body);
            assertEquals(0, a.requests.get());
            // a GET is idempotent: it moves on
            assertEquals(200, upstream(busy.url(), a.url()).get("/x").status);
        }
    }

    @Test
    public void postIsNotRepeatedOnceItMayHaveBeenProcessed() throws Exception {
        try (Fakes.Hangup crash = new Fakes.Hangup(); Fakes.Instance a = Fakes.ok("a")) {
            Upstream u = upstream(crash.url(), a.url());
            IOException e = assertThrows(IOException.class, () -> u.post("/orders", "{}"));
            assertTrue(e.toString(), !(e instanceof HttpJson.NotSentException) && !(e instanceof Upstream.UnreachableException));
            assertEquals(1, crash.connections.get());
            assertEquals(0, a.requests.get());
            // the same failure on a GET is retried on the next instance
            Upstream g = upstream(crash.url(), a.url());
            assertEquals(200, g.get("/x").status);
            assertEquals(1, a.requests.get());
        }
    }

    @Test
    public void readTimeoutIsNotRetried() throws Exception {
        try (Fakes.Instance slow = new Fakes.Instance((ex, body) -> {
                 try {
                     Thread.sleep(1500);
                 } catch (InterruptedException e) {
                     Thread.currentThread().interrupt();
                 }
                 Fakes.send(ex, 200, "{}");
             });
             Fakes.Instance a = Fakes.ok("a")) {
            Upstream u = new Upstream("catalog", Arrays.asList(slow.url(), a.url()), 500, 300, 1000);
            assertThrows(java.net.SocketTimeoutException.class, () -> u.get("/x"));
            assertEquals(0, a.requests.get());
        }
    }

    @Test
    public void everyInstanceDownIsUnreachable() throws Exception {
        Upstream u = upstream(Fakes.closedUrl(), Fakes.closedUrl());
        Upstream.UnreachableException e = assertThrows(Upstream.UnreachableException.class, () -> u.post("/orders", "{}"));
        assertTrue(e.getMessage(), e.getMessage().startsWith("catalog unreachable (2 instance(s))"));
        // all starting: the last 503 is passed on
        try (Fakes.Instance starting = new Fakes.Instance((ex, body) -> Fakes.send(ex, 503, "{}",
                WebServer.STATE_HEADER, "starting"))) {
            assertEquals(503, upstream(starting.url(), Fakes.closedUrl()).post("/orders", "{}").status);
        }
    }

    @Test
    public void connectionsAreReusedUntilTheServerSaysClose() throws Exception {
        try (Fakes.CountingServer s = new Fakes.CountingServer()) {
            for (int i = 0; i < 3; i++) {
                assertEquals(200, HttpJson.request("GET", s.url() + "/x", null, 500, 2000).status);
            }
            assertEquals(1, s.connections.get());
        }
        try (Fakes.Instance draining = new Fakes.Instance((ex, body) -> Fakes.send(ex, 200, "{}",
                "Connection", "close", WebServer.STATE_HEADER, "draining"))) {
            for (int i = 0; i < 2; i++) {
                HttpJson.Result r = HttpJson.request("GET", draining.url() + "/x", null, 500, 2000);
                assertEquals("draining", r.instanceState);
                assertEquals(200, r.status);
            }
        }
    }
}
