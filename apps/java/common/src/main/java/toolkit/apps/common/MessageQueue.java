package toolkit.apps.common;

/**
 * The order queue, RabbitMQ or Kafka (QUEUE_KIND). Messages are JSON strings.
 * Delivery is at-least-once: consumers must be idempotent.
 */
public interface MessageQueue extends AutoCloseable {

    /** Handles one message; returning normally acknowledges it. */
    interface Handler {
        void handle(String body) throws Exception;
    }

    /** Thrown by a handler for a message that can never be processed (it is dropped, not retried). */
    final class PoisonMessage extends Exception {
        private static final long serialVersionUID = 1L;

        public PoisonMessage(String msg) {
            super(msg);
        }
    }

    /** Connects and declares the queue/topic; throws when the broker is not reachable. */
    void connect() throws Exception;

    /** Publishes a message and waits until the broker has accepted it. */
    void publish(String key, String body) throws Exception;

    /** Starts consuming in the background; the handler's success acknowledges the message. */
    void consume(Handler handler) throws Exception;

    /** Health check. */
    void ping() throws Exception;

    String describe();

    @Override
    void close();

    /**
     * Builds the queue from QUEUE_KIND (rabbitmq | kafka), AMQP_URL, KAFKA_BOOTSTRAP, QUEUE_NAME.
     * {@code producer} says whether this service publishes (the Kafka producer is created only then).
     */
    static MessageQueue fromEnv(boolean producer) {
        String kind = Env.get("QUEUE_KIND", "rabbitmq").toLowerCase();
        String name = Env.get("QUEUE_NAME", "orders");
        if (kind.equals("rabbitmq") || kind.equals("amqp")) {
            return new RabbitQueue(Env.require("AMQP_URL"), name);
        }
        if (kind.equals("kafka")) {
            return new KafkaQueue(Env.require("KAFKA_BOOTSTRAP"), name, Env.get("KAFKA_GROUP", "billing"), producer);
        }
        throw new IllegalStateException("QUEUE_KIND must be rabbitmq or kafka, got '" + kind + "'");
    }
}
