package toolkit.apps.common;

import org.slf4j.Logger;

/** Retries a start-up step until it works or a deadline passes (services may start before their dependencies). */
public final class Retry {
    private static final Logger LOG = Log.get(Retry.class);

    /** A step that may fail. */
    public interface Step<T> {
        T run() throws Exception;
    }

    private Retry() {}

    /**
     * Runs {@code step} until it succeeds, sleeping between attempts (1 s growing to 5 s).
     * Gives up with the last exception once {@code timeoutSeconds} have passed.
     */
    public static <T> T until(String what, int timeoutSeconds, Step<T> step) throws Exception {
        long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
        long sleepMs = 1000;
        int attempt = 0;
        while (true) {
            attempt++;
            try {
                T result = step.run();
                if (attempt > 1) {
                    LOG.info("{}: connected after {} attempts", what, attempt);
                }
                return result;
            } catch (Exception e) {
                if (System.nanoTime() + sleepMs * 1_000_000L > deadline) {
                    LOG.error("{}: giving up after {} attempts ({} s): {}", what, attempt, timeoutSeconds, describe(e));
                    throw e;
                }
                LOG.warn("{}: not ready (attempt {}): {}; retrying in {} ms", what, attempt, describe(e), sleepMs);
                Thread.sleep(sleepMs);
                sleepMs = Math.min(sleepMs * 2, 5000);
            }
        }
    }

    /** One line describing an exception and its root cause, without stack trace. */
    public static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String msg = e.getClass().getSimpleName() + ": " + e.getMessage();
        if (root != e) {
            msg += " (cause: " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
        }
        return msg;
    }
}
