package toolkit.apps.common;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;

import org.junit.Test;

public class EnvTest {

    @Test
    public void redactsPasswordsInUrls() {
        assertEquals("amqp://shop:***@mq:5672/shop", Env.redact("amqp://shop:s3cret@mq:5672/shop"));
        assertEquals("jdbc:postgresql://db:5432/shop?...", Env.redact("jdbc:postgresql://db:5432/shop?password=s3cret"));
        assertEquals("jdbc:mariadb://db:3306/shop", Env.redact("jdbc:mariadb://db:3306/shop"));
        assertFalse(Env.redact("amqp://u:p%40ss@h/v").contains("p%40ss"));
        assertFalse(Env.redact("jdbc:mariadb://u:pw@db/shop?user=u&password=pw").contains("pw"));
    }
}
