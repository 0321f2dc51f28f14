package toolkit.apps.common;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;

/**
 * RabbitMQ: a durable fanout exchange named QUEUE_NAME feeds two durable queues, QUEUE_NAME
 * (consumed by billing with manual acks) and QUEUE_NAME + ".audit" (never consumed: it keeps a
 * copy of every order so the queue's own tooling can show what was published).
 * Messages are persistent and publishing waits for the broker's confirm.
 */
public final class RabbitQueue implements MessageQueue {
    private static final Logger LOG = Log.get(RabbitQueue.class);

    private final String uri;
    private final String exchange;
    private final String queue;
    private final String auditQueue;
    private Connection connection;
    private Channel publishChannel;
    private Channel consumeChannel;

    public RabbitQueue(String uri, String queueName) {
        this.uri = uri;
        this.exchange = queueName;
        this.queue = queueName;
        this.auditQueue = queueName + ".audit";
    }

    @Override
    public String describe() {
        return "rabbitmq " + Env.redact(uri) + " exchange=" + exchange + " queues=" + queue + "," + auditQueue;
    }

    @Override
    public synchronized void connect() throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(uri);
        f.setConnectionTimeout(5000);
        f.setRequestedHeartbeat(30);
        f.setAutomaticRecoveryEnabled(true);
        f.setTopologyRecoveryEnabled(true);
        f.setNetworkRecoveryInterval(3000);
        Connection c = f.newConnection(Env.get("SERVICE_NAME", "toolkit-app"));
        try {
            Channel ch = c.createChannel();
            ch.exchangeDeclare(exchange, BuiltinExchangeType.FANOUT, true);
            ch.queueDeclare(queue, true, false, false, null);
            ch.queueDeclare(auditQueue, true, false, false, null);
            ch.queueBind(queue, exchange, "");
            ch.queueBind(auditQueue, exchange, "");
            ch.confirmSelect();
            publishChannel = ch;
            connection = c;
        } catch (Exception e) {
            try {
                c.abort();
            } catch (Exception ignored) {
                // already failing
            }
            throw e;
        }
    }

    @Override
    public synchronized void publish(String key, String body) throws Exception {
        if (publishChannel == null || !publishChannel.isOpen()) {
            throw new IOException("RabbitMQ channel is not open");
        }
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .contentType("application/json")
                .deliveryMode(2) // persistent
                .messageId(key)
                .build();
        publishChannel.basicPublish(exchange, queue, true, props, body.getBytes(StandardCharsets.UTF_8));
        publishChannel.waitForConfirmsOrDie(10000);
    }

    @Override
    public synchronized void consume(final Handler handler) throws Exception {
        final Channel ch = connection.createChannel();
        ch.basicQos(Env.getInt("QUEUE_PREFETCH", 16));
        ch.basicConsume(queue, false, Env.get("SERVICE_NAME", "toolkit-app"), new DefaultConsumer(ch) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body)
                    throws IOException {
                String text = new String(body, StandardCharsets.UTF_8);
                try {
                    handler.handle(text);
                    ch.basicAck(env.getDeliveryTag(), false);
                } catch (PoisonMessage e) {
                    LOG.error("dropping unprocessable message: {}", e.getMessage());
                    ch.basicNack(env.getDeliveryTag(), false, false);
                } catch (Exception e) {
                    LOG.warn("message processing failed, requeueing: {}", Retry.describe(e));
                    try {
                        Thread.sleep(1000);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                    }
                    ch.basicNack(env.getDeliveryTag(), false, true);
                }
            }
        });
        consumeChannel = ch;
        LOG.info("consuming queue {}", queue);
    }

    @Override
    public void ping() throws Exception {
        Connection c = connection;
        if (c == null || !c.isOpen()) {
            throw new IOException("RabbitMQ connection is closed");
        }
        Channel p = publishChannel;
        if (p == null || !p.isOpen()) {
            throw new IOException("RabbitMQ channel is closed");
        }
        Channel cc = consumeChannel;
        if (cc != null && !cc.isOpen()) {
            throw new IOException("RabbitMQ consumer channel is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (connection != null) {
            try {
                connection.close(3000);
            } catch (Exception e) {
                LOG.debug("closing RabbitMQ connection: {}", e.getMessage());
            }
        }
    }
}
