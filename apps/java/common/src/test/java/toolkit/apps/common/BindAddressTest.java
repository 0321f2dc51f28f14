package toolkit.apps.common;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.URL;
import java.util.HashMap;
import java.util.Map;
import org.junit.After;
import org.junit.Test;

/** BIND_ADDRESS: one address or a list; unset listens on every interface; a bad value is a configuration error. */
public class BindAddressTest {
    private final Map<String, String> env = new HashMap<String, String>();

    @After
    public void restore() {
        Env.useSource(null);
    }

    private void bind(String value) {
        env.put("BIND_ADDRESS", value);
        Env.useSource(env);
    }

    private static int status(String host, int port) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL("http://" + host + ":" + port + "/live").openConnection();
        c.setConnectTimeout(2000);
        c.setReadTimeout(2000);
        try {
            return c.getResponseCode();
        } finally {
            c.disconnect();
        }
    }

    @Test
    public void unsetMeansEveryInterface() {
        Env.useSource(env);
        assertTrue(WebServer.bindAddresses().isEmpty());
    }

    @Test
    public void parsesAList() throws Exception {
        bind(" 127.0.0.1 , [::1]");
        assertEquals(InetAddress.getByName("127.0.0.1"), WebServer.bindAddresses().get(0));
        assertEquals(InetAddress.getByName("::1"), WebServer.bindAddresses().get(1));
    }

    @Test
    public void refusesAnEmptyEntryAndAnUnknownName() {
        bind("127.0.0.1,");
        assertThrows(Env.ConfigException.class, WebServer::bindAddresses);
        bind("no-such-host.invalid");
        Env.ConfigException e = assertThrows(Env.ConfigException.class, WebServer::bindAddresses);
        assertTrue(e.getMessage(), e.getMessage().contains("BIND_ADDRESS"));
    }

    @Test
    public void listensOnlyOnTheGivenAddress() throws Exception {
        bind("127.0.0.1");
        WebServer web = new WebServer("bind-test");
        web.start(0);
        try {
            assertEquals(200, status("127.0.0.1", web.port()));
            // 127.0.0.2 is loopback too, but not the bound address: nothing listens there.
            assertThrows(IOException.class, () -> status("127.0.0.2", web.port()));
        } finally {
            web.stop();
        }
    }
}
