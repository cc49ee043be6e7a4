// The Java reference client (org.apache.kafka:kafka-clients) against
// log-server's Kafka listener: a producer with acks=all and idempotence
// (every codec), a consumer with assign + seekToBeginning (and the ends,
// offsetsForTimes, a group's commit read back), the AdminClient's
// create / describe / delete topics, a record over the topic's
// max.message.bytes refused with RecordTooLargeException, and a topic
// created by a producer's first record.
//
//   mvn -q -f pom.xml dependency:copy-dependencies -DoutputDirectory=lib
//   java -cp 'lib/*' KafkaClients.java HOST:PORT
//
// One line per check (`ok NAME` or `FAIL NAME: cause`, with the stack),
// then `java: N passed, M failed`; exit 1 when one failed. No consumer
// group membership: the server has none yet (consumers assign).
// Non-ASCII text in this file is written as \\u escapes (the source
// launcher of Java 17 reads the source in the platform encoding).

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class KafkaClients {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final int PER_CODEC = 10;
    static final Duration WAIT = Duration.ofSeconds(20);

    static String bootstrap;
    static String suffix = Long.toHexString(new Random().nextLong() & 0xffffffffffL);
    static int passed = 0;
    static int failed = 0;

    interface Body {
        void run() throws Exception;
    }

    static void check(String name, Body body) {
        long start = System.nanoTime();
        try {
            body.run();
            passed++;
            System.out.printf("ok %s (%d ms)%n", name, (System.nanoTime() - start) / 1_000_000);
        } catch (Throwable t) {
            failed++;
            System.out.printf("FAIL %s: %s%n", name, t);
            t.printStackTrace(System.out);
        }
        System.out.flush();
    }

    static void require(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static void equal(Object want, Object got, String what) {
        if (!java.util.Objects.deepEquals(want, got)) {
            throw new AssertionError(what + ": want " + show(want) + ", got " + show(got));
        }
    }

    static String show(Object o) {
        if (o instanceof byte[] b) {
            return "\"" + new String(b, StandardCharsets.UTF_8) + "\"";
        }
        return String.valueOf(o);
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String topicName(String what) {
        return "java-" + what + "-" + suffix;
    }

    // ------------------------------------------------------------ clients

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        return Admin.create(p);
    }

    static KafkaProducer<byte[], byte[]> producer(String codec, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.putAll(extra);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs)))
                .all()
                .get(30, TimeUnit.SECONDS);
    }

    static Throwable cause(Body body) throws Exception {
        try {
            body.run();
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new AssertionError("expected a failure, got success");
    }

    // ------------------------------------------------------------ checks

    /** What the producer check wrote, for the consumer check. */
    static String produced;

    static byte[] valueOf(String codec, int i) {
        return b("value " + i + " " + codec + " \u00e9");
    }

    static void producerIdempotentAcksAll() throws Exception {
        String topic = topicName("produce");
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1, Map.of());
        }
        long next = 0;
        for (String codec : CODECS) {
            try (KafkaProducer<byte[], byte[]> producer = producer(codec, Map.of())) {
                List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
                for (int i = 0; i < PER_CODEC; i++) {
                    List<Header> headers = List.of(
                            new RecordHeader("codec", b(codec)), new RecordHeader("null", null));
                    sent.add(producer.send(new ProducerRecord<>(
                            topic, 0, null, b("key-" + i), valueOf(codec, i), headers)));
                }
                producer.flush();
                for (java.util.concurrent.Future<RecordMetadata> f : sent) {
                    RecordMetadata m = f.get(30, TimeUnit.SECONDS);
                    equal(next, m.offset(), codec + ": offset of record " + (next % PER_CODEC));
                    equal(0, m.partition(), codec + ": partition");
                    next++;
                }
            }
        }
        produced = topic;
    }

    static void consumerAssignSeekToBeginning() throws Exception {
        require(produced != null, "the producer check did not produce");
        TopicPartition tp = new TopicPartition(produced, 0);
        long total = (long) CODECS.length * PER_CODEC;
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(null)) {
            consumer.assign(List.of(tp));
            equal(0L, consumer.beginningOffsets(List.of(tp)).get(tp), "beginningOffsets");
            equal(total, consumer.endOffsets(List.of(tp)).get(tp), "endOffsets");
            consumer.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = poll(consumer, total);
            equal(total, (long) got.size(), "records read from the beginning");
            for (int n = 0; n < total; n++) {
                ConsumerRecord<byte[], byte[]> r = got.get(n);
                String codec = CODECS[n / PER_CODEC];
                int i = n % PER_CODEC;
                equal((long) n, r.offset(), "offset");
                equal(b("key-" + i), r.key(), "key at " + n);
                equal(valueOf(codec, i), r.value(), "value at " + n);
                Header[] headers = r.headers().toArray();
                equal(2, headers.length, "headers at " + n);
                equal("codec", headers[0].key(), "header key");
                equal(b(codec), headers[0].value(), "header value");
                equal("null", headers[1].key(), "header key");
                equal(null, headers[1].value(), "null header value");
            }
            // The end, and a time before everything.
            consumer.seekToEnd(List.of(tp));
            equal(total, consumer.position(tp), "position after seekToEnd");
            Map<TopicPartition, OffsetAndTimestamp> times =
                    consumer.offsetsForTimes(Map.of(tp, System.currentTimeMillis() - 3_600_000L));
            require(times.get(tp) != null, "offsetsForTimes an hour ago: null");
            equal(0L, times.get(tp).offset(), "offsetsForTimes an hour ago");
            Map<TopicPartition, OffsetAndTimestamp> future =
                    consumer.offsetsForTimes(Map.of(tp, System.currentTimeMillis() + 3_600_000L));
            equal(null, future.get(tp), "offsetsForTimes in an hour");
        }
    }

    static List<ConsumerRecord<byte[], byte[]>> poll(KafkaConsumer<byte[], byte[]> consumer, long want) {
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (got.size() < want && System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                got.add(r);
            }
        }
        require(got.size() >= want, "records polled within " + WAIT + ": want " + want + ", got " + got.size());
        return got;
    }

    static void groupCommitReadBack() throws Exception {
        require(produced != null, "the producer check did not produce");
        TopicPartition tp = new TopicPartition(produced, 0);
        String group = "java-group-" + suffix;
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(group)) {
            consumer.assign(List.of(tp));
            equal(null, consumer.committed(Set.of(tp)).get(tp), "committed before any commit");
            consumer.seek(tp, 5);
            equal(5L, poll(consumer, 7).get(0).offset(), "first record after seek(5)");
            consumer.commitSync(Map.of(tp, new OffsetAndMetadata(12, "java-meta")));
            OffsetAndMetadata committed = consumer.committed(Set.of(tp)).get(tp);
            require(committed != null, "committed after commitSync: null");
            equal(12L, committed.offset(), "committed offset");
            equal("java-meta", committed.metadata(), "committed metadata");
        }
        // A new consumer of the group starts where the group committed.
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(group)) {
            consumer.assign(List.of(tp));
            equal(12L, consumer.position(tp), "position of a new consumer of the group");
            ConsumerRecord<byte[], byte[]> first = poll(consumer, 1).get(0);
            equal(12L, first.offset(), "first record of a new consumer of the group");
        }
        try (Admin admin = admin()) {
            Map<TopicPartition, OffsetAndMetadata> offsets =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            require(offsets.get(tp) != null, "admin listConsumerGroupOffsets: no entry for " + tp);
            equal(12L, offsets.get(tp).offset(), "admin listConsumerGroupOffsets");
        }
    }

    static void adminTopics() throws Exception {
        String topic = topicName("admin");
        try (Admin admin = admin()) {
            DescribeClusterResult cluster = admin.describeCluster();
            equal(1, cluster.nodes().get(30, TimeUnit.SECONDS).size(), "cluster nodes");
            createTopic(admin, topic, 3, Map.of("retention.ms", "3600000", "segment.bytes", "1048576"));
            Throwable again = cause(() -> createTopic(admin, topic, 3, Map.of()));
            require(again instanceof TopicExistsException, "create again: " + again);
            require(admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic), "listTopics lacks " + topic);
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            equal(topic, d.name(), "described name");
            equal(3, d.partitions().size(), "described partitions");
            for (TopicPartitionInfo p : d.partitions()) {
                require(p.leader() != null, "partition " + p.partition() + " has no leader");
                equal(1, p.replicas().size(), "replicas of partition " + p.partition());
                equal(1, p.isr().size(), "isr of partition " + p.partition());
            }
            require(!d.isInternal(), "internal");
            admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            require(!admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic), "listTopics still has " + topic);
            Throwable gone = cause(() -> admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS));
            require(gone instanceof UnknownTopicOrPartitionException, "describe a deleted topic: " + gone);
            Throwable twice = cause(() -> admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS));
            require(twice instanceof UnknownTopicOrPartitionException, "delete a deleted topic: " + twice);
        }
    }

    static void recordTooLarge() throws Exception {
        String topic = topicName("too-large");
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1, Map.of("max.message.bytes", "1048576"));
        }
        byte[] big = new byte[5 << 20];
        new Random(7).nextBytes(big);
        Map<String, Object> extra = Map.of(
                ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 8 << 20,
                ProducerConfig.BUFFER_MEMORY_CONFIG, 64L << 20,
                ProducerConfig.BATCH_SIZE_CONFIG, 1 << 20);
        try (KafkaProducer<byte[], byte[]> producer = producer("none", extra)) {
            Throwable refused = cause(() -> producer.send(new ProducerRecord<>(topic, 0, null, big)).get(60, TimeUnit.SECONDS));
            require(refused instanceof RecordTooLargeException, "5 MiB over max.message.bytes 1 MiB: " + refused);
            // The producer goes on: a small record after it is written at 0.
            RecordMetadata m = producer.send(new ProducerRecord<>(topic, 0, null, b("small"))).get(30, TimeUnit.SECONDS);
            equal(0L, m.offset(), "offset of the record after the refused one");
        }
    }

    static void producerCreatesTopicOnFirstUse() throws Exception {
        String topic = topicName("auto");
        try (KafkaProducer<byte[], byte[]> producer = producer("lz4", Map.of())) {
            RecordMetadata m = producer.send(new ProducerRecord<>(topic, b("k"), b("first"))).get(30, TimeUnit.SECONDS);
            equal(0L, m.offset(), "offset of the first record");
        }
        try (Admin admin = admin()) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            equal(1, d.partitions().size(), "partitions of an auto-created topic (num.partitions)");
        }
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: java -cp 'lib/*' KafkaClients.java HOST:PORT");
            System.exit(2);
        }
        bootstrap = args[0];
        System.out.println("kafka-clients " + org.apache.kafka.common.utils.AppInfoParser.getVersion()
                + " against " + bootstrap);
        check("java admin create/describe/delete topics", KafkaClients::adminTopics);
        check("java producer acks=all enable.idempotence=true, every codec", KafkaClients::producerIdempotentAcksAll);
        check("java consumer assign + seekToBeginning", KafkaClients::consumerAssignSeekToBeginning);
        check("java group commit read back (assign, no membership)", KafkaClients::groupCommitReadBack);
        check("java record over max.message.bytes: RecordTooLargeException", KafkaClients::recordTooLarge);
        check("java producer to a new topic creates it (Metadata auto-create)", KafkaClients::producerCreatesTopicOnFirstUse);
        System.out.printf("java: %d passed, %d failed%n", passed, failed);
        System.out.flush();
        System.exit(failed > 0 ? 1 : 0);
    }
}
