package toolkit.apps.common;

import java.net.URI;

/** Configuration comes only from environment variables. */
public final class Env {
    private Env() {}

    public static String get(String name, String def) {
        String v = System.getenv(name);
        return v == null || v.trim().isEmpty() ? def : v.trim();
    }

    /** Optional value, kept as-is (passwords may legitimately contain spaces). */
    public static String secret(String name) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? null : v;
    }

    public static String require(String name) {
        String v = get(name, null);
        if (v == null) {
            throw new IllegalStateException("environment variable " + name + " is required");
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
            throw new IllegalStateException("environment variable " + name + " must be an integer, got '" + v + "'");
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
