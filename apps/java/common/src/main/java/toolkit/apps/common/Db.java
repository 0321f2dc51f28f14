package toolkit.apps.common;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * JDBC access with a very small connection pool. The RDBMS (PostgreSQL or MariaDB) is chosen by
 * the JDBC URL; the SQL used by the services is portable except for the auto-increment column
 * type, given by {@link #idColumn()}.
 */
public final class Db implements AutoCloseable {
    private static final Logger LOG = Log.get(Db.class);

    /** Supported engines. */
    public enum Engine { POSTGRESQL, MARIADB }

    /** Work done with a borrowed connection. */
    public interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    private final String url;
    private final String user;
    private final boolean hasPassword;
    private final Properties props = new Properties();
    private final Engine engine;
    private final BlockingQueue<Connection> idle;
    private final Semaphore permits;
    private volatile boolean closed;

    public Db(String url, String user, String password, int maxConnections) {
        this.url = url;
        this.user = user;
        this.hasPassword = password != null;
        if (url.startsWith("jdbc:postgresql:")) {
            engine = Engine.POSTGRESQL;
        } else if (url.startsWith("jdbc:mariadb:") || url.startsWith("jdbc:mysql:")) {
            engine = Engine.MARIADB;
        } else {
            throw new Env.ConfigException("DB_URL must start with jdbc:postgresql: or jdbc:mariadb:, got "
                    + Env.redact(url));
        }
        if (user != null) {
            props.setProperty("user", user);
        }
        if (password != null) {
            props.setProperty("password", password);
        }
        // Fail fast on an unreachable server and on half-open connections
        // (PostgreSQL's driver counts in seconds, MariaDB's in milliseconds).
        boolean pg = engine == Engine.POSTGRESQL;
        props.setProperty("connectTimeout", pg ? "5" : "5000");
        props.setProperty("socketTimeout", pg ? "60" : "60000");
        if (engine == Engine.MARIADB && url.startsWith("jdbc:mysql:")) {
            props.setProperty("permitMysqlScheme", "true");
        }
        this.idle = new ArrayBlockingQueue<Connection>(maxConnections);
        this.permits = new Semaphore(maxConnections);
    }

    /** Reads DB_URL, DB_USER, DB_PASSWORD (user and password raw), and DB_POOL_SIZE (default 8). */
    public static Db fromEnv() {
        return new Db(Env.require("DB_URL"), Env.raw("DB_USER", null), Env.secret("DB_PASSWORD"),
                Env.getInt("DB_POOL_SIZE", 8));
    }

    public Engine engine() {
        return engine;
    }

    public String describe() {
        return engine.name().toLowerCase() + " " + Env.redact(url) + " user=" + (user == null ? "(from URL or none)" : user)
                + " password=" + (hasPassword ? "set" : "unset");
    }

    /** Column definition of a generated BIGINT primary key. */
    public String idColumn() {
        return engine == Engine.POSTGRESQL ? "BIGSERIAL PRIMARY KEY" : "BIGINT AUTO_INCREMENT PRIMARY KEY";
    }

    /** True for a unique/primary-key violation (SQLSTATE class 23, integrity constraint). */
    public static boolean isDuplicate(SQLException e) {
        String state = e.getSQLState();
        return state != null && state.startsWith("23");
    }

    public <T> T with(Work<T> work) throws SQLException {
        Connection c = borrow();
        boolean ok = false;
        try {
            T result = work.run(c);
            ok = true;
            return result;
        } finally {
            giveBack(c, ok);
        }
    }

    /** Runs statements (DDL) one by one. */
    public void execute(final String... sql) throws SQLException {
        with(new Work<Void>() {
            @Override
            public Void run(Connection c) throws SQLException {
                try (Statement st = c.createStatement()) {
                    for (String s : sql) {
                        st.execute(s);
                    }
                }
                return null;
            }
        });
    }

    /** Health check: a connection can be borrowed and is valid. */
    public void ping() throws SQLException {
        with(new Work<Void>() {
            @Override
            public Void run(Connection c) throws SQLException {
                try (Statement st = c.createStatement()) {
                    st.setQueryTimeout(3);
                    st.execute("SELECT 1");
                }
                return null;
            }
        });
    }

    private Connection borrow() throws SQLException {
        if (closed) {
            throw new SQLException("pool closed");
        }
        try {
            if (!permits.tryAcquire(10, TimeUnit.SECONDS)) {
                throw new SQLException("timed out waiting for a database connection");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted");
        }
        try {
            Connection c;
            while ((c = idle.poll()) != null) {
                if (c.isValid(2)) {
                    return c;
                }
                quietClose(c);
            }
            c = DriverManager.getConnection(url, props);
            c.setAutoCommit(true);
            return c;
        } catch (SQLException | RuntimeException e) {
            permits.release();
            throw e;
        }
    }

    private void giveBack(Connection c, boolean ok) {
        try {
            boolean reusable = !closed && !c.isClosed();
            if (reusable && !c.getAutoCommit()) {
                c.rollback();
                c.setAutoCommit(true);
            }
            if (!reusable || (!ok && !c.isValid(1)) || !idle.offer(c)) {
                quietClose(c);
            }
        } catch (SQLException e) {
            quietClose(c);
        } finally {
            permits.release();
        }
    }

    private static void quietClose(Connection c) {
        try {
            c.close();
        } catch (SQLException e) {
            LOG.debug("closing connection: {}", e.getMessage());
        }
    }

    @Override
    public void close() {
        closed = true;
        Connection c;
        while ((c = idle.poll()) != null) {
            quietClose(c);
        }
    }
}
