package toolkit.apps.common;

import java.net.URI;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Configuration comes only from environment variables (the wiring contract of apps/README.md).
 * Plain values are trimmed; credentials ({@link #raw}) are kept exactly as given.
 */
public final class Env {
    private static volatile Map<String, String> source = System.getenv();

    /** A missing or malformed environment variable (the message names it). Services exit with status 2. */
    public static final class ConfigException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        public ConfigException(String message) {
            super(message);
        }
    }

    private Env() {}

    /** Replaces the environment read by this class (tests only); {@code null} restores System.getenv(). */
    static void useSource(Map<String, String> env) {
        source = env == null ? System.getenv() : env;
    }

    private static String lookup(String name) {
        return source.get(name);
    }

    /** Trimmed value of {@code name}, or {@code def} when unset or blank. */
    public static String get(String name, String def) {
        String v = lookup(name);
        return v == null || v.trim().isEmpty() ? def : v.trim();
    }

    /** Optional value, kept as-is (passwords may legitimately contain spaces). */
    public static String secret(String name) {
        return raw(name, null);
    }

    /**
     * Value kept byte for byte (user names, passwords, RabbitMQ vhosts may contain any character,
     * leading spaces included); {@code def} when unset or empty.
     */
    public static String raw(String name, String def) {
        String v = lookup(name);
        return v == null || v.isEmpty() ? def : v;
    }

    /** True when the variable is set to a non-empty value. */
    public static boolean isSet(String name) {
        String v = lookup(name);
        return v != null && !v.isEmpty();
    }

    public static String require(String name) {
        String v = get(name, null);
        if (v == null) {
            throw new ConfigException("environment variable " + name + " is required");
        }
        return v;
    }

    public static int getInt(String name, int def) {
        String v = get(name, null);
        if (v == null) {
            return def;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new ConfigException("environment variable " + name + " must be an integer, got '" + v + "'");
        }
    }

    /** Like {@link #getInt} but also rejects values below {@code min}. */
    public static int getInt(String name, int def, int min) {
        int v = getInt(name, def);
        if (v < min) {
            throw new ConfigException("environment variable " + name + " must be at least " + min + ", got " + v);
        }
        return v;
    }

    /** Comma-separated list: items trimmed, empty items dropped; empty list when unset. */
    public static List<String> list(String name) {
        return splitList(get(name, null));
    }

    static List<String> splitList(String value) {
        List<String> out = new ArrayList<String>();
        if (value == null) {
            return out;
        }
        for (String part : value.split(",")) {
            String p = part.trim();
            if (!p.isEmpty()) {
                out.add(p);
            }
        }
        return out;
    }

    /** The environment variable listing every instance of app {@code app}: {@code CATALOG_URLS}. */
    public static String urlsVariable(String app) {
        return app.toUpperCase(Locale.ROOT).replace('-', '_') + "_URLS";
    }

    /**
     * Base URLs of every instance of another app: {@code <APP>_URLS} ("http://h1:8081,http://h2:8081"),
     * else the deprecated single {@code <APP>_URL}, else {@code def}. Trailing slashes are removed.
     *
     * @throws ConfigException naming the variable when an item is not an http(s) URL with a host
     */
    public static List<String> urls(String app, String def) {
        String many = urlsVariable(app);
        String one = many.substring(0, many.length() - 1);
        String var = many;
        List<String> items = list(many);
        if (items.isEmpty()) {
            var = one;
            items = list(one);
        }
        if (items.isEmpty()) {
            var = "default of " + many;
            items = splitList(def);
        }
        List<String> out = new ArrayList<String>();
        for (String item : items) {
            out.add(checkUrl(var, item));
        }
        return Collections.unmodifiableList(out);
    }

    private static String checkUrl(String var, String item) {
        String u = item;
        while (u.endsWith("/")) {
            u = u.substring(0, u.length() - 1);
        }
        try {
            URI parsed = new URI(u);
            String scheme = parsed.getScheme();
            if (scheme == null || !(scheme.equalsIgnoreCase("http") || scheme.equalsIgnoreCase("https"))
                    || parsed.getHost() == null || parsed.getRawUserInfo() != null) {
                throw new ConfigException("environment variable " + var
                        + ": each item must be http://host:port or https://host:port, got '" + redact(item) + "'");
            }
        } catch (java.net.URISyntaxException e) {
            throw new ConfigException("environment variable " + var + ": not a URL: '" + redact(item) + "'");
        }
        return u;
    }

    /**
     * Parses a {@code host:port[,host:port]} list (IPv6 hosts in brackets: {@code [::1]:5672}); a
     * missing port is {@code defaultPort}.
     *
     * @throws ConfigException naming {@code var} on an empty list or a bad port
     */
    public static List<HostPort> hostPorts(String var, String value, int defaultPort) {
        List<HostPort> out = new ArrayList<HostPort>();
        for (String item : splitList(value)) {
            out.add(HostPort.parse(var, item, defaultPort));
        }
        if (out.isEmpty()) {
            throw new ConfigException("environment variable " + var + " is empty");
        }
        return Collections.unmodifiableList(out);
    }

    /** One {@code host:port} item of an address list. */
    public static final class HostPort {
        public final String host;
        public final int port;

        public HostPort(String host, int port) {
            this.host = host;
            this.port = port;
        }

        static HostPort parse(String var, String item, int defaultPort) {
            String host;
            String port = null;
            if (item.startsWith("[")) {
                int end = item.indexOf(']');
                if (end < 0) {
                    throw new ConfigException("environment variable " + var + ": unclosed '[' in '" + item + "'");
                }
                host = item.substring(1, end);
                String rest = item.substring(end + 1);
                if (rest.startsWith(":")) {
                    port = rest.substring(1);
                } else if (!rest.isEmpty()) {
                    throw new ConfigException("environment variable " + var + ": bad address '" + item + "'");
                }
            } else {
                int colon = item.lastIndexOf(':');
                if (colon >= 0 && item.indexOf(':') != colon) {
                    throw new ConfigException("environment variable " + var
                            + ": write an IPv6 address in brackets, e.g. [::1]:5672, got '" + item + "'");
                }
                host = colon >= 0 ? item.substring(0, colon) : item;
                port = colon >= 0 ? item.substring(colon + 1) : null;
            }
            if (host.isEmpty()) {
                throw new ConfigException("environment variable " + var + ": no host in '" + item + "'");
            }
            int p = defaultPort;
            if (port != null) {
                try {
                    p = Integer.parseInt(port);
                } catch (NumberFormatException e) {
                    p = -1;
                }
                if (p < 1 || p > 65535) {
                    throw new ConfigException("environment variable " + var + ": bad port in '" + item + "'");
                }
            }
            return new HostPort(host, p);
        }

        @Override
        public String toString() {
            return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof HostPort && ((HostPort) o).host.equals(host) && ((HostPort) o).port == port;
        }

        @Override
        public int hashCode() {
            return host.hashCode() * 31 + port;
        }
    }

    /**
     * Makes a URL safe to log: drops user-info (user:password@) and the query string
     * (JDBC URLs may carry ?password=...).
     */
    public static String redact(String url) {
        if (url == null) {
            return null;
        }
        String prefix = "";
        String rest = url;
        if (rest.startsWith("jdbc:")) {
            prefix = "jdbc:";
            rest = rest.substring(5);
        }
        int q = rest.indexOf('?');
        if (q >= 0) {
            rest = rest.substring(0, q) + "?...";
        }
        int semi = rest.indexOf(';');
        if (semi >= 0) {
            rest = rest.substring(0, semi) + ";...";
        }
        try {
            URI u = URI.create(rest.replace("?...", "").replace(";...", ""));
            if (u.getRawUserInfo() != null) {
                String user = u.getRawUserInfo();
                int colon = user.indexOf(':');
                String shown = colon >= 0 ? user.substring(0, colon) + ":***" : user;
                rest = rest.replace(u.getRawUserInfo() + "@", shown + "@");
            }
        } catch (IllegalArgumentException e) {
            int at = rest.lastIndexOf('@');
            if (at >= 0) {
                rest = "***@" + rest.substring(at + 1);
            }
        }
        return prefix + rest;
    }
}
