package toolkit.apps.common;

import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;

/**
 * Kafka: topic QUEUE_NAME (created with the broker's defaults if missing), producer with acks=all,
 * consumer group KAFKA_GROUP (default "billing") committing offsets only after processing.
 */
public final class KafkaQueue implements MessageQueue {
    private static final Logger LOG = Log.get(KafkaQueue.class);

    private final String bootstrap;
    private final String topic;
    private final String group;
    private final boolean producerRole;
    private AdminClient admin;
    private KafkaProducer<String, String> producer;
    private volatile Thread consumerThread;
    private volatile KafkaConsumer<String, String> consumer;
    private volatile boolean running;
    private volatile Throwable consumerFailure;

    public KafkaQueue(String bootstrap, String topic, String group, boolean producerRole) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.group = group;
        this.producerRole = producerRole;
    }

    @Override
    public String describe() {
        return "kafka " + bootstrap + " topic=" + topic + (producerRole ? "" : " group=" + group);
    }

    @Override
    public synchronized void connect() throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10000);
        ap.put(AdminClientConfig.CLIENT_ID_CONFIG, Service.serviceName() + "-admin");
        AdminClient a = AdminClient.create(ap);
        try {
            Collection<Node> nodes = a.describeCluster().nodes().get(10, TimeUnit.SECONDS);
            if (nodes.isEmpty()) {
                throw new IllegalStateException("Kafka cluster has no nodes");
            }
            ensureTopic(a);
        } catch (Exception e) {
            a.close(Duration.ofSeconds(1));
            throw e;
        }
        admin = a;
        if (producerRole) {
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10000);
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10000);
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20000);
            pp.put(ProducerConfig.LINGER_MS_CONFIG, 0);
            pp.put(ProducerConfig.CLIENT_ID_CONFIG, Service.serviceName());
            producer = new KafkaProducer<String, String>(pp, new StringSerializer(), new StringSerializer());
        }
    }

    private void ensureTopic(AdminClient a) throws Exception {
        if (a.listTopics().names().get(10, TimeUnit.SECONDS).contains(topic)) {
            return;
        }
        NewTopic nt = new NewTopic(topic, Optional.<Integer>empty(), Optional.<Short>empty());
        try {
            a.createTopics(Collections.singleton(nt)).all().get(10, TimeUnit.SECONDS);
            LOG.info("created Kafka topic {}", topic);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }
    }

    @Override
    public void publish(String key, String body) throws Exception {
        KafkaProducer<String, String> p = producer;
        if (p == null) {
            throw new IllegalStateException("Kafka producer not connected");
        }
        p.send(new ProducerRecord<String, String>(topic, key, body)).get(30, TimeUnit.SECONDS);
    }

    @Override
    public synchronized void consume(final Handler handler) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 50);
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, Service.serviceName());
        final KafkaConsumer<String, String> c =
                new KafkaConsumer<String, String>(cp, new StringDeserializer(), new StringDeserializer());
        c.subscribe(Collections.singletonList(topic));
        consumer = c;
        running = true;
        Thread t = new Thread(() -> loop(c, handler), "kafka-consumer");
        t.setDaemon(true);
        consumerThread = t;
        t.start();
        LOG.info("consuming Kafka topic {} as group {}", topic, group);
    }

    private void loop(KafkaConsumer<String, String> c, Handler handler) {
        try {
            while (running) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofSeconds(1));
                for (TopicPartition tp : records.partitions()) {
                    List<ConsumerRecord<String, String>> list = records.records(tp);
                    long next = -1;
                    for (ConsumerRecord<String, String> r : list) {
                        try {
                            handler.handle(r.value());
                            next = r.offset() + 1;
                        } catch (PoisonMessage e) {
                            LOG.error("skipping unprocessable record {}@{}: {}", tp, r.offset(), e.getMessage());
                            next = r.offset() + 1;
                        } catch (Exception e) {
                            LOG.warn("record {}@{} failed, will retry: {}", tp, r.offset(), Retry.describe(e));
                            c.seek(tp, r.offset());
                            Thread.sleep(1000);
                            break;
                        }
                    }
                    if (next >= 0) {
                        Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<TopicPartition, OffsetAndMetadata>();
                        commit.put(tp, new OffsetAndMetadata(next));
                        c.commitSync(commit);
                    }
                }
            }
        } catch (WakeupException e) {
            if (running) {
                consumerFailure = e;
            }
        } catch (Throwable e) {
            consumerFailure = e;
            LOG.error("Kafka consumer stopped: {}", Retry.describe(e));
        } finally {
            c.close(Duration.ofSeconds(5));
        }
    }

    @Override
    public void ping() throws Exception {
        AdminClient a = admin;
        if (a == null) {
            throw new IllegalStateException("Kafka not connected");
        }
        Throwable f = consumerFailure;
        if (f != null) {
            throw new IllegalStateException("Kafka consumer stopped: " + Retry.describe(f));
        }
        Collection<Node> nodes = a.describeCluster().nodes().get(5, TimeUnit.SECONDS);
        if (nodes.isEmpty()) {
            throw new IllegalStateException("Kafka cluster has no nodes");
        }
    }

    @Override
    public synchronized void close() {
        running = false;
        KafkaConsumer<String, String> c = consumer;
        if (c != null) {
            c.wakeup();
            Thread t = consumerThread;
            if (t != null) {
                try {
                    t.join(10000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
        if (producer != null) {
            producer.close(Duration.ofSeconds(5));
        }
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
    }
}
