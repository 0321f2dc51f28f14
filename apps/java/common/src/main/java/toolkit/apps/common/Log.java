package toolkit.apps.common;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Logging through slf4j-simple, configured to print one line per event on stdout. */
public final class Log {
    static {
        setDefault("org.slf4j.simpleLogger.logFile", "System.out");
        setDefault("org.slf4j.simpleLogger.defaultLogLevel", Env.get("LOG_LEVEL", "info"));
        setDefault("org.slf4j.simpleLogger.showDateTime", "true");
        setDefault("org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSZ");
        setDefault("org.slf4j.simpleLogger.showShortLogName", "true");
        // The client libraries are chatty at INFO (Kafka prints its whole config).
        setDefault("org.slf4j.simpleLogger.log.org.apache.kafka", "warn");
        setDefault("org.slf4j.simpleLogger.log.com.rabbitmq", "warn");
        setDefault("org.slf4j.simpleLogger.log.redis.clients", "warn");
        // The MariaDB driver logs expected errors (e.g. the duplicate key of an idempotent insert).
        setDefault("org.slf4j.simpleLogger.log.org.mariadb.jdbc", "error");
    }

    private Log() {}

    private static void setDefault(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    public static Logger get(Class<?> cls) {
        return LoggerFactory.getLogger(cls);
    }
}
