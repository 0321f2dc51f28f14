package toolkit.apps.common;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {

    @Test
    public void writesObjectsInOrder() {
        Map<String, Object> o = Json.obj("id", 7L, "name", "a \"mug\"\n", "ok", true, "none", null,
                "list", Arrays.asList(1, 2.5, "x", 3.0));
        assertEquals("{\"id\":7,\"name\":\"a \\\"mug\\\"\\n\",\"ok\":true,\"none\":null,\"list\":[1,2.5,\"x\",3.0]}",
                Json.write(o));
    }

    @Test
    public void parsesWhatItWrites() {
        String text = "{ \"product_id\" : 1, \"quantity\": 2, \"f\": -1.5e2, \"s\": \"\\u00e9\\t\", "
                + "\"a\": [true, false, null, {}], \"o\": {\"k\": []} }";
        Map<String, Object> m = Json.parseObject(text);
        assertEquals(1L, m.get("product_id"));
        assertEquals(Long.valueOf(2), Json.getLong(m, "quantity"));
        assertEquals(-150.0, (Double) m.get("f"), 0.0);
        assertEquals("\u00e9\t", m.get("s"));
        assertEquals(4, ((List<?>) m.get("a")).size());
        assertEquals(m, Json.parseObject(Json.write(m)));
    }

    @Test
    public void getLongRejectsNonIntegers() {
        Map<String, Object> m = Json.parseObject("{\"a\":1.5,\"b\":\"x\",\"c\":\"12\",\"d\":3.0}");
        assertNull(Json.getLong(m, "a"));
        assertNull(Json.getLong(m, "b"));
        assertNull(Json.getLong(m, "missing"));
        assertEquals(Long.valueOf(12), Json.getLong(m, "c"));
        assertEquals(Long.valueOf(3), Json.getLong(m, "d"));
    }

    @Test
    public void rejectsMalformedInput() {
        for (String bad : new String[] {"", "{", "{\"a\" 1}", "[1,]", "{\"a\":1} x", "tru", "\"\\q\"", "[1 2]"}) {
            try {
                Json.parse(bad);
                fail("accepted: " + bad);
            } catch (Json.ParseException expected) {
                assertTrue(expected.getMessage().contains("offset"));
            }
        }
    }
}
