package toolkit.apps.common;

import java.util.List;

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
     * Builds the queue from QUEUE_KIND (rabbitmq | kafka), QUEUE_NAME and the broker wiring:
     * RabbitMQ AMQP_ADDRESSES, AMQP_USER, AMQP_PASSWORD, AMQP_VHOST (raw values; the deprecated
     * AMQP_URL only when AMQP_ADDRESSES is unset), Kafka KAFKA_BOOTSTRAP.
     * {@code producer} says whether this service publishes (the Kafka producer is created only then).
     */
    static MessageQueue fromEnv(boolean producer) {
        String kind = Env.get("QUEUE_KIND", "rabbitmq").toLowerCase();
        String name = Env.get("QUEUE_NAME", "orders");
        if (kind.equals("rabbitmq") || kind.equals("amqp")) {
            if (Env.isSet("AMQP_ADDRESSES")) {
                return new RabbitQueue(Env.hostPorts("AMQP_ADDRESSES", Env.get("AMQP_ADDRESSES", ""), 5672),
                        Env.raw("AMQP_USER", null), Env.raw("AMQP_PASSWORD", null), Env.raw("AMQP_VHOST", "/"), name);
            }
            if (Env.isSet("AMQP_URL")) {
                return new RabbitQueue(Env.require("AMQP_URL"), name);
            }
            throw new Env.ConfigException(
                    "environment variable AMQP_ADDRESSES is required for QUEUE_KIND=rabbitmq (or the deprecated AMQP_URL)");
        }
        if (kind.equals("kafka")) {
            List<Env.HostPort> brokers = Env.hostPorts("KAFKA_BOOTSTRAP", Env.require("KAFKA_BOOTSTRAP"), 9092);
            StringBuilder bootstrap = new StringBuilder();
            for (Env.HostPort b : brokers) {
                bootstrap.append(bootstrap.length() == 0 ? "" : ",").append(b);
            }
            return new KafkaQueue(bootstrap.toString(), name, Env.get("KAFKA_GROUP", "billing"), producer);
        }
        throw new Env.ConfigException("QUEUE_KIND must be rabbitmq or kafka, got '" + kind + "'");
    }
}
