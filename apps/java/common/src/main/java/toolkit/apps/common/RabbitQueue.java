package toolkit.apps.common;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Address;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;

/**
 * RabbitMQ: a durable fanout exchange named QUEUE_NAME feeds two durable queues, QUEUE_NAME
 * (consumed by billing with manual acks) and QUEUE_NAME + ".audit" (never consumed: it keeps a
 * copy of every order so the queue's own tooling can show what was published).
 * Messages are persistent and publishing waits for the broker's confirm.
 *
 * <p>Wiring: a list of broker addresses with user, password and vhost given separately (raw values,
 * never parsed out of a URL); the client connects to the first address that answers and, with
 * automatic recovery, moves to another one when its broker goes away. The deprecated single
 * {@code amqp://} URL is still accepted.
 */
public final class RabbitQueue implements MessageQueue {
    private static final Logger LOG = Log.get(RabbitQueue.class);

    private final String uri;
    private final List<Env.HostPort> addresses;
    private final String user;
    private final String password;
    private final String vhost;
    private final String exchange;
    private final String queue;
    private final String auditQueue;
    private Connection connection;
    private Channel publishChannel;
    private Channel consumeChannel;

    /** Deprecated wiring: one {@code amqp://user:pass@host:port/vhost} URL (URL-encoded parts). */
    public RabbitQueue(String uri, String queueName) {
        this(uri, null, null, null, null, queueName);
    }

    /**
     * @param addresses brokers to try (every node of the cluster)
     * @param user user name, raw (null: the client default "guest")
     * @param password password, raw (null: the client default "guest")
     * @param vhost virtual host, raw (null: "/")
     */
    public RabbitQueue(List<Env.HostPort> addresses, String user, String password, String vhost, String queueName) {
        this(null, addresses, user, password, vhost, queueName);
    }

    private RabbitQueue(String uri, List<Env.HostPort> addresses, String user, String password, String vhost,
                        String queueName) {
        this.uri = uri;
        this.addresses = addresses;
        this.user = user;
        this.password = password;
        this.vhost = vhost == null ? "/" : vhost;
        this.exchange = queueName;
        this.queue = queueName;
        this.auditQueue = queueName + ".audit";
    }

    @Override
    public String describe() {
        String where = uri != null ? Env.redact(uri) + " (deprecated AMQP_URL)"
                : "addresses=" + addresses + " user=" + (user == null ? "guest" : user) + " vhost=" + vhost
                + " password=" + (password == null ? "unset" : "set");
        return "rabbitmq " + where + " exchange=" + exchange + " queues=" + queue + "," + auditQueue;
    }

    @Override
    public synchronized void connect() throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        if (uri != null) {
            f.setUri(uri);
        } else {
            if (user != null) {
                f.setUsername(user);
            }
            if (password != null) {
                f.setPassword(password);
            }
            f.setVirtualHost(vhost);
        }
        f.setConnectionTimeout(5000);
        f.setRequestedHeartbeat(30);
        f.setAutomaticRecoveryEnabled(true);
        f.setTopologyRecoveryEnabled(true);
        f.setNetworkRecoveryInterval(3000);
        String clientName = Service.serviceName();
        Connection c = uri != null ? f.newConnection(clientName) : f.newConnection(amqpAddresses(), clientName);
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

    /** The broker addresses as the client library's type (every one, in the configured order). */
    List<Address> amqpAddresses() {
        List<Address> out = new ArrayList<Address>();
        for (Env.HostPort hp : addresses) {
            out.add(new Address(hp.host, hp.port));
        }
        return out;
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
        ch.basicConsume(queue, false, Service.serviceName(), new DefaultConsumer(ch) {
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
