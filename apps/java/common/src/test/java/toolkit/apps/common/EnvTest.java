package toolkit.apps.common;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.After;
import org.junit.Test;

public class EnvTest {
    static final String ODD = " p@ss/w:rd %41#'$\"\\ ";

    private final Map<String, String> env = new HashMap<String, String>();

    private void use(String... kv) {
        for (int i = 0; i < kv.length; i += 2) {
            env.put(kv[i], kv[i + 1]);
        }
        Env.useSource(env);
    }

    @After
    public void restore() {
        Env.useSource(null);
    }

    @Test
    public void redactsPasswordsInUrls() {
        assertEquals("amqp://shop:***@mq:5672/shop", Env.redact("amqp://shop:s3cret@mq:5672/shop"));
        assertEquals("jdbc:postgresql://db:5432/shop?...", Env.redact("jdbc:postgresql://db:5432/shop?password=s3cret"));
        assertEquals("jdbc:mariadb://db:3306/shop", Env.redact("jdbc:mariadb://db:3306/shop"));
        assertFalse(Env.redact("amqp://u:p%40ss@h/v").contains("p%40ss"));
        assertFalse(Env.redact("jdbc:mariadb://u:pw@db/shop?user=u&password=pw").contains("pw"));
    }

    @Test
    public void credentialsAreKeptRawOtherValuesTrimmed() {
        use("AMQP_PASSWORD", ODD, "AMQP_VHOST", "/", "PORT", " 8081 ", "EMPTY", "", "BLANK", "  ");
        assertEquals(ODD, Env.raw("AMQP_PASSWORD", null));
        assertEquals(ODD, Env.secret("AMQP_PASSWORD"));
        assertEquals("/", Env.raw("AMQP_VHOST", "x"));
        assertEquals(8081, Env.getInt("PORT", 1));
        assertEquals("d", Env.raw("EMPTY", "d"));
        assertEquals("d", Env.get("BLANK", "d"));
        assertEquals("  ", Env.raw("BLANK", "d"));
        assertTrue(Env.isSet("BLANK"));
        assertFalse(Env.isSet("EMPTY"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Env.getInt("PORT2", 1, 2));
        assertTrue(e.getMessage().contains("PORT2"));
    }

    @Test
    public void parsesLists() {
        assertEquals(Arrays.asList("a", "b"), Env.splitList(" a, ,b ,"));
        assertTrue(Env.splitList(null).isEmpty());
        assertTrue(Env.splitList(" , ").isEmpty());
    }

    @Test
    public void urlsPreferTheListThenTheDeprecatedSingleUrlThenTheDefault() {
        use();
        assertEquals(Arrays.asList("http://localhost:8081"), Env.urls("catalog", "http://localhost:8081/"));
        use("CATALOG_URL", "http://old:8081/");
        assertEquals(Arrays.asList("http://old:8081"), Env.urls("catalog", "http://localhost:8081"));
        use("CATALOG_URLS", "http://h1:8081/, http://h2:8081,,https://[::1]:8443");
        assertEquals(Arrays.asList("http://h1:8081", "http://h2:8081", "https://[::1]:8443"),
                Env.urls("catalog", "http://localhost:8081"));
        assertEquals("CATALOG_URLS", Env.urlsVariable("catalog"));
        assertEquals("MY_APP_URLS", Env.urlsVariable("my-app"));
    }

    @Test
    public void badUrlsNameTheVariable() {
        use("ORDERS_URLS", "http://h1:8082,h2:8082");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Env.urls("orders", null));
        assertTrue(e.getMessage(), e.getMessage().contains("ORDERS_URLS") && e.getMessage().contains("h2:8082"));
        use("ORDERS_URLS", "", "ORDERS_URL", "ftp://x");
        e = assertThrows(IllegalStateException.class, () -> Env.urls("orders", null));
        assertTrue(e.getMessage(), e.getMessage().contains("ORDERS_URL"));
        use("ORDERS_URLS", "http://user:" + "secret@h1:8082", "ORDERS_URL", "");
        e = assertThrows(IllegalStateException.class, () -> Env.urls("orders", null));
        assertFalse(e.getMessage(), e.getMessage().contains("secret"));
    }

    @Test
    public void parsesAddressLists() {
        List<Env.HostPort> a = Env.hostPorts("AMQP_ADDRESSES", "mq1:5672, mq2 ,[::1]:5673,[fe80::1]", 5672);
        assertEquals(Arrays.asList(new Env.HostPort("mq1", 5672), new Env.HostPort("mq2", 5672),
                new Env.HostPort("::1", 5673), new Env.HostPort("fe80::1", 5672)), a);
        assertEquals("[::1]:5673", a.get(2).toString());
        assertEquals("mq1:5672", a.get(0).toString());
        for (String bad : new String[] {"", " , ", "h:0", "h:65536", "h:x", ":5672", "::1:5672", "[::1", "[::1]x"}) {
            IllegalStateException e = assertThrows(bad, IllegalStateException.class,
                    () -> Env.hostPorts("AMQP_ADDRESSES", bad, 5672));
            assertTrue(e.getMessage(), e.getMessage().contains("AMQP_ADDRESSES"));
        }
    }

    @Test
    public void rabbitWiringFromSeparateRawValues() {
        use("QUEUE_KIND", "rabbitmq", "AMQP_ADDRESSES", "mq1:5672,mq2:5673", "AMQP_USER", "shop user",
                "AMQP_PASSWORD", ODD, "AMQP_VHOST", "/shop vhost", "AMQP_URL", "amqp://old:old@old/");
        RabbitQueue q = (RabbitQueue) MessageQueue.fromEnv(true);
        assertEquals("[mq1:5672, mq2:5673]", q.amqpAddresses().toString());
        String d = q.describe();
        assertTrue(d, d.contains("addresses=[mq1:5672, mq2:5673] user=shop user vhost=/shop vhost password=set"));
        assertFalse(d, d.contains(ODD.trim()));
        assertFalse(d, d.contains("old"));
    }

    @Test
    public void rabbitWiringFallsBackToTheDeprecatedUrl() {
        use("AMQP_URL", "amqp://shop:s3cret@mq:5672/%2F");
        String d = MessageQueue.fromEnv(true).describe();
        assertTrue(d, d.startsWith("rabbitmq amqp://shop:***@mq:5672/%2F (deprecated AMQP_URL)"));
        use("AMQP_URL", "");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> MessageQueue.fromEnv(true));
        assertTrue(e.getMessage(), e.getMessage().contains("AMQP_ADDRESSES"));
    }

    @Test
    public void kafkaBootstrapIsCheckedAndNormalised() {
        use("QUEUE_KIND", "kafka", "KAFKA_BOOTSTRAP", " k1:9092, k2 ");
        assertEquals("kafka k1:9092,k2:9092 topic=orders", MessageQueue.fromEnv(true).describe());
        use("KAFKA_BOOTSTRAP", "k1:x");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> MessageQueue.fromEnv(true));
        assertTrue(e.getMessage(), e.getMessage().contains("KAFKA_BOOTSTRAP"));
        use("QUEUE_KIND", "zeromq");
        assertThrows(IllegalStateException.class, () -> MessageQueue.fromEnv(true));
    }

    @Test
    public void describeNeverShowsPasswords() {
        use("DB_URL", "jdbc:postgresql://db:5432/shop", "DB_USER", "shop", "DB_PASSWORD", ODD,
                "REDIS_HOST", "cache", "REDIS_PASSWORD", ODD);
        String db = Db.fromEnv().describe();
        assertEquals("postgresql jdbc:postgresql://db:5432/shop user=shop password=set", db);
        Redis r = Redis.fromEnv();
        try {
            assertEquals("redis cache:6379 password=set", r.describe());
        } finally {
            r.close();
        }
    }
}
