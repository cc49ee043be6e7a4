// Kafka RecordBatch v2 cross-check with the Java reference implementation
// (org.apache.kafka:kafka-clients: MemoryRecordsBuilder, DefaultRecordBatch).
//
//   mvn -q -f pom.xml dependency:copy-dependencies -DoutputDirectory=lib
//   java -cp 'lib/*' Check.java gen DIR     write the fixed case set, built by kafka-clients
//   java -cp 'lib/*' Check.java check DIR   read every case in DIR with kafka-clients
//
// A case is <case>.batch (one RecordBatch v2, from baseOffset on, baseOffset 0)
// and <case>.json (what it holds; keys, values and header values as lowercase
// hex or null). `check` parses each batch, validates it (ensureValid: size and
// CRC-32C), and compares every field of the JSON with what kafka-clients
// decodes; one line per case, then `ok N cases`; exit 1 on any mismatch,
// naming case and field. The case set is the one of ../kafka_python.py and of
// log-format/examples/kafka_interop.rs: keep them in step.
//
// kafka-clients 4.3 keeps the record classes in org.apache.kafka.common.record.internal
// (3.8 to 4.1: org.apache.kafka.common.record). No JSON library ships with
// kafka-clients, so the JSON of the exchange format is written and parsed here.
// Non-ASCII text in this file is written as \\u escapes (the source launcher of
// Java 17 reads the source in the platform encoding).

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.DefaultRecordBatch;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;

public class Check {
    static final long BASE = 1_700_000_000_000L;

    // ------------------------------------------------------------ the cases

    record Hdr(String key, byte[] value) {}

    record Rec(long timestamp, byte[] key, byte[] value, List<Hdr> headers) {}

    record Case(String name, String codec, long producerId, short producerEpoch, int baseSequence, List<Rec> records) {}

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static Rec rec(long ts, byte[] key, byte[] value, Hdr... headers) {
        return new Rec(ts, key, value, List.of(headers));
    }

    static List<Rec> keyed100() {
        List<Rec> out = new ArrayList<>();
        for (int i = 0; i < 100; i++)
            out.add(rec(BASE + i, b(String.format("key-%03d", i)), b(String.format("value-%03d:", i) + "payload ".repeat(8))));
        return out;
    }

    static List<Rec> multiblock() {
        List<Rec> out = new ArrayList<>();
        for (int i = 0; i < 40; i++)
            out.add(rec(BASE + i, b(String.format("key-%02d", i)), b(String.format("record-%02d ", i).repeat(205).substring(0, 2048))));
        return out;
    }

    static List<Case> cases() {
        List<Case> out = new ArrayList<>();
        short noEpoch = RecordBatch.NO_PRODUCER_EPOCH;
        long noId = RecordBatch.NO_PRODUCER_ID;
        int noSeq = RecordBatch.NO_SEQUENCE;
        out.add(new Case("uncompressed_single", "none", noId, noEpoch, noSeq, List.of(rec(BASE, b("key"), b("value")))));
        out.add(new Case("keyed_100", "none", noId, noEpoch, noSeq, keyed100()));
        List<Rec> nullKeys = new ArrayList<>(), tombstones = new ArrayList<>(), idem = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            nullKeys.add(rec(BASE + i, null, b("value-" + i)));
            tombstones.add(rec(BASE + i, b("key-" + i), null));
        }
        out.add(new Case("null_keys", "none", noId, noEpoch, noSeq, nullKeys));
        out.add(new Case("tombstones", "none", noId, noEpoch, noSeq, tombstones));
        out.add(new Case("empty_key_value", "none", noId, noEpoch, noSeq,
                List.of(rec(BASE, b(""), b("")), rec(BASE, b(""), null), rec(BASE, null, b("")))));
        out.add(new Case("headers", "none", noId, noEpoch, noSeq, List.of(
                rec(BASE, b("k0"), b("v0"), new Hdr("h", new byte[] {1, 2}), new Hdr("n", null)),
                rec(BASE + 1, b("k1"), b("v1"),
                        new Hdr("\u043a\u043b\u044e\u0447", b("\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435")),
                        new Hdr("\u65e5\u672c\u8a9e", new byte[0]),
                        new Hdr("emoji-\ud83c\udf89", new byte[] {0, (byte) 0xff})),
                rec(BASE + 2, b("k2"), b("v2")),
                rec(BASE + 3, b("k3"), b("v3"), new Hdr("dup", b("1")), new Hdr("dup", b("2")), new Hdr("", b("empty key"))))));
        byte[] big = new byte[1 << 20];
        for (int j = 0; j < big.length; j++)
            big[j] = (byte) (j * 31 + 7);
        out.add(new Case("large_value_1mib", "none", noId, noEpoch, noSeq, List.of(rec(BASE, b("big"), big))));
        long[] ts = {BASE, BASE - 1, BASE + 1000, BASE - 86_400_000L, BASE + (1L << 40), 0, BASE + 5};
        List<Rec> spread = new ArrayList<>();
        for (int i = 0; i < ts.length; i++)
            spread.add(rec(ts[i], null, b("t" + i)));
        out.add(new Case("timestamps_spread", "none", noId, noEpoch, noSeq, spread));
        for (int i = 0; i < 5; i++)
            idem.add(rec(BASE + i, b("k" + i), b("v" + i)));
        out.add(new Case("idempotent", "none", 42, (short) 3, 17, idem));
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd"))
            out.add(new Case("codec_" + codec, codec, noId, noEpoch, noSeq, keyed100()));
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd"))
            out.add(new Case("codec_" + codec + "_multiblock", codec, noId, noEpoch, noSeq, multiblock()));
        return out;
    }

    // ------------------------------------------------------------ JSON out

    static String hex(byte[] v) {
        if (v == null)
            return null;
        StringBuilder sb = new StringBuilder(v.length * 2);
        for (byte x : v)
            sb.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
        return sb.toString();
    }

    static String hex(ByteBuffer v) {
        if (v == null)
            return null;
        byte[] a = new byte[v.remaining()];
        v.duplicate().get(a);
        return hex(a);
    }

    static String quote(String s) {
        if (s == null)
            return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\')
                sb.append('\\').append(c);
            else if (c < 0x20)
                sb.append(String.format("\\u%04x", (int) c));
            else
                sb.append(c);
        }
        return sb.append('"').toString();
    }

    /** The layout all three implementations write: one record a line. */
    static String caseJson(String codec, Case c) {
        long max = Long.MIN_VALUE;
        for (Rec r : c.records())
            max = Math.max(max, r.timestamp());
        StringBuilder sb = new StringBuilder();
        sb.append("{\"codec\": ").append(quote(codec))
                .append(", \"producer_id\": ").append(c.producerId())
                .append(", \"producer_epoch\": ").append(c.producerEpoch())
                .append(", \"base_sequence\": ").append(c.baseSequence())
                .append(", \"base_timestamp\": ").append(c.records().get(0).timestamp())
                .append(", \"max_timestamp\": ").append(max)
                .append(",\n \"records\": [\n");
        for (int i = 0; i < c.records().size(); i++) {
            Rec r = c.records().get(i);
            sb.append("  {\"offset_delta\": ").append(i)
                    .append(", \"timestamp\": ").append(r.timestamp())
                    .append(", \"key\": ").append(quote(hex(r.key())))
                    .append(", \"value\": ").append(quote(hex(r.value())))
                    .append(", \"headers\": [");
            for (int h = 0; h < r.headers().size(); h++) {
                Hdr hd = r.headers().get(h);
                sb.append(h == 0 ? "" : ", ").append("{\"key\": ").append(quote(hd.key()))
                        .append(", \"value\": ").append(quote(hex(hd.value()))).append('}');
            }
            sb.append("]}").append(i + 1 < c.records().size() ? ",\n" : "\n");
        }
        return sb.append("]}\n").toString();
    }

    // ------------------------------------------------------------ JSON in

    /** A parser for JSON documents: objects (LinkedHashMap), arrays (List), strings, longs, booleans, null. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String s) {
            Json p = new Json(s);
            Object v = p.value();
            p.ws();
            if (p.i != s.length())
                throw p.err("trailing characters");
            return v;
        }

        private IllegalArgumentException err(String what) {
            return new IllegalArgumentException("JSON: " + what + " at character " + i);
        }

        private void ws() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0)
                i++;
        }

        private char peek() {
            ws();
            if (i >= s.length())
                throw err("unexpected end");
            return s.charAt(i);
        }

        private void expect(char c) {
            if (peek() != c)
                throw err("expected '" + c + "'");
            i++;
        }

        private boolean word(String w) {
            if (s.startsWith(w, i)) {
                i += w.length();
                return true;
            }
            return false;
        }

        private Object value() {
            char c = peek();
            if (c == '{') {
                i++;
                Map<String, Object> m = new LinkedHashMap<>();
                if (peek() == '}') {
                    i++;
                    return m;
                }
                do {
                    if (peek() != '"')
                        throw err("expected a key");
                    String k = string();
                    expect(':');
                    m.put(k, value());
                } while (peek() == ',' && ++i > 0);
                expect('}');
                return m;
            }
            if (c == '[') {
                i++;
                List<Object> l = new ArrayList<>();
                if (peek() == ']') {
                    i++;
                    return l;
                }
                do
                    l.add(value());
                while (peek() == ',' && ++i > 0);
                expect(']');
                return l;
            }
            if (c == '"')
                return string();
            if (word("null"))
                return null;
            if (word("true"))
                return Boolean.TRUE;
            if (word("false"))
                return Boolean.FALSE;
            int start = i;
            if (i < s.length() && s.charAt(i) == '-')
                i++;
            while (i < s.length() && Character.isDigit(s.charAt(i)))
                i++;
            if (i < s.length() && ".eE".indexOf(s.charAt(i)) >= 0)
                throw err("only integers are used in this format");
            if (start == i || (i == start + 1 && s.charAt(start) == '-'))
                throw err("unexpected character");
            return Long.parseLong(s.substring(start, i));
        }

        private String string() {
            expect('"');
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (i >= s.length())
                    throw err("unterminated string");
                char c = s.charAt(i++);
                if (c == '"')
                    return sb.toString();
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (i >= s.length())
                    throw err("unterminated escape");
                char e = s.charAt(i++);
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> {
                        if (i + 4 > s.length())
                            throw err("short \\u escape");
                        sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> throw err("bad escape \\" + e);
                }
            }
        }
    }

    // ------------------------------------------------------------ gen

    static void gen(Path dir) throws IOException {
        Files.createDirectories(dir);
        int n = 0;
        for (Case c : cases()) {
            Compression compression = Compression.of(CompressionType.forName(c.codec())).build();
            MemoryRecordsBuilder builder = MemoryRecords.builder(ByteBuffer.allocate(1024), RecordBatch.MAGIC_VALUE_V2,
                    compression, TimestampType.CREATE_TIME, 0L, RecordBatch.NO_TIMESTAMP,
                    c.producerId(), c.producerEpoch(), c.baseSequence(), false,
                    RecordBatch.NO_PARTITION_LEADER_EPOCH);
            for (int i = 0; i < c.records().size(); i++) {
                Rec r = c.records().get(i);
                Header[] headers = r.headers().stream().map(h -> new RecordHeader(h.key(), h.value())).toArray(Header[]::new);
                builder.appendWithOffset(i, r.timestamp(), r.key(), r.value(), headers);
            }
            ByteBuffer buf = builder.build().buffer();
            byte[] data = new byte[buf.remaining()];
            buf.get(data);
            MutableRecordBatch batch = MemoryRecords.readableRecords(ByteBuffer.wrap(data)).batches().iterator().next();
            String written = batch.compressionType().name;
            if (!written.equals(c.codec()))
                System.out.println("note " + c.name() + ": asked for " + c.codec() + ", kafka-clients wrote " + written);
            Files.write(dir.resolve(c.name() + ".batch"), data);
            Files.writeString(dir.resolve(c.name() + ".json"), caseJson(written, c), StandardCharsets.UTF_8);
            System.out.printf("gen  %-28s %4d records  %-6s %8d bytes%n", c.name(), c.records().size(), written, data.length);
            n++;
        }
        System.out.println("ok " + n + " cases");
    }

    // ------------------------------------------------------------ check

    static String shortStr(Object v) {
        String s = String.valueOf(v);
        return s.length() <= 80 ? s : s.substring(0, 72) + "... (" + s.length() + " chars)";
    }

    static Object num(Object v) {
        return v instanceof Number x ? (Object) x.longValue() : v;
    }

    static final class Mismatches {
        final List<String> errs = new ArrayList<>();

        void cmp(String field, Object expected, Object got) {
            if (!Objects.equals(num(expected), num(got)))
                errs.add(field + ": expected " + shortStr(expected) + ", got " + shortStr(got));
        }
    }

    @SuppressWarnings("unchecked")
    static List<String> checkCase(Path dir, String name, Map<String, Object> want, StringBuilder okLine) throws IOException {
        Mismatches m = new Mismatches();
        byte[] data = Files.readAllBytes(dir.resolve(name + ".batch"));
        if (data.length < DefaultRecordBatch.RECORD_BATCH_OVERHEAD) {
            m.errs.add("batch: " + data.length + " bytes, shorter than a RecordBatch v2 header (61)");
            return m.errs;
        }
        if (data[16] != RecordBatch.MAGIC_VALUE_V2) {
            m.errs.add("magic: expected 2, got " + data[16]);
            return m.errs;
        }
        List<MutableRecordBatch> batches = new ArrayList<>();
        MemoryRecords.readableRecords(ByteBuffer.wrap(data)).batches().forEach(batches::add);
        if (batches.size() != 1) {
            m.errs.add("batch: expected exactly one batch, kafka-clients sees " + batches.size());
            return m.errs;
        }
        MutableRecordBatch batch = batches.get(0);
        m.cmp("size_in_bytes", (long) data.length, (long) batch.sizeInBytes());
        try {
            batch.ensureValid();
        } catch (RuntimeException e) {
            m.errs.add("crc: ensureValid failed: " + e.getMessage());
        }
        if (batch.isControlBatch())
            m.errs.add("attributes: a control batch");
        List<Map<String, Object>> records = (List<Map<String, Object>>) want.getOrDefault("records", List.of());
        m.cmp("base_offset", 0L, batch.baseOffset());
        m.cmp("codec", want.get("codec"), batch.compressionType().name);
        m.cmp("producer_id", want.get("producer_id"), batch.producerId());
        m.cmp("producer_epoch", want.get("producer_epoch"), (long) batch.producerEpoch());
        m.cmp("base_sequence", want.get("base_sequence"), (long) batch.baseSequence());
        m.cmp("base_timestamp", want.get("base_timestamp"), ((DefaultRecordBatch) batch).baseTimestamp());
        m.cmp("max_timestamp", want.get("max_timestamp"), batch.maxTimestamp());
        m.cmp("record_count", (long) records.size(), batch.countOrNull() == null ? null : (long) batch.countOrNull());
        if (!records.isEmpty())
            m.cmp("last_offset_delta", records.get(records.size() - 1).get("offset_delta"), batch.lastOffset() - batch.baseOffset());
        List<Record> got = new ArrayList<>();
        try {
            for (Record r : batch)
                got.add(r);
        } catch (RuntimeException e) {
            m.errs.add("records: kafka-clients cannot read them: " + e);
            return m.errs;
        }
        m.cmp("records (count)", (long) records.size(), (long) got.size());
        for (int i = 0; i < Math.min(records.size(), got.size()); i++) {
            Map<String, Object> w = records.get(i);
            Record g = got.get(i);
            String p = "records[" + i + "].";
            m.cmp(p + "offset_delta", w.get("offset_delta"), g.offset() - batch.baseOffset());
            m.cmp(p + "timestamp", w.get("timestamp"), g.timestamp());
            m.cmp(p + "key", w.get("key"), hex(g.key()));
            m.cmp(p + "value", w.get("value"), hex(g.value()));
            List<List<Object>> wh = new ArrayList<>();
            for (Map<String, Object> h : (List<Map<String, Object>>) w.getOrDefault("headers", List.of()))
                wh.add(java.util.Arrays.asList(h.get("key"), h.get("value")));
            List<List<Object>> gh = new ArrayList<>();
            for (Header h : g.headers())
                gh.add(java.util.Arrays.asList(h.key(), hex(h.value())));
            m.cmp(p + "headers", wh, gh);
        }
        okLine.append(String.format("%-28s %4d records  %-6s %8d bytes", name, got.size(), batch.compressionType().name, data.length));
        return m.errs;
    }

    @SuppressWarnings("unchecked")
    static int check(Path dir) throws IOException {
        TreeSet<String> jsons = new TreeSet<>(), batches = new TreeSet<>();
        try (var files = Files.list(dir)) {
            files.map(f -> f.getFileName().toString()).forEach(f -> {
                if (f.endsWith(".json"))
                    jsons.add(f.substring(0, f.length() - 5));
                else if (f.endsWith(".batch"))
                    batches.add(f.substring(0, f.length() - 6));
            });
        }
        int failed = 0;
        for (String b : batches)
            if (!jsons.contains(b)) {
                System.out.println("FAIL " + b + ": .batch without .json");
                failed++;
            }
        for (String j : jsons)
            if (!batches.contains(j)) {
                System.out.println("FAIL " + j + ": .json without .batch");
                failed++;
            }
        int lone = failed;
        jsons.retainAll(batches);
        if (jsons.isEmpty()) {
            System.out.println("FAIL " + dir + ": no cases (*.json + *.batch)");
            return 1;
        }
        for (String name : jsons) {
            List<String> errs;
            StringBuilder okLine = new StringBuilder();
            try {
                Map<String, Object> want = (Map<String, Object>) Json.parse(Files.readString(dir.resolve(name + ".json"), StandardCharsets.UTF_8));
                errs = checkCase(dir, name, want, okLine);
            } catch (RuntimeException e) {
                errs = List.of("batch: kafka-clients cannot parse it (or its JSON): " + e);
            }
            if (errs.isEmpty()) {
                System.out.println("ok   " + okLine);
            } else {
                failed++;
                for (String e : errs)
                    System.out.println("FAIL " + name + ": " + e);
            }
        }
        if (failed > 0) {
            System.out.println("FAIL " + failed + " of " + (jsons.size() + lone) + " cases");
            return 1;
        }
        System.out.println("ok " + jsons.size() + " cases");
        return 0;
    }

    public static void main(String[] args) throws IOException {
        if (args.length == 2 && args[0].equals("gen")) {
            gen(Path.of(args[1]));
        } else if (args.length == 2 && args[0].equals("check")) {
            System.exit(check(Path.of(args[1])));
        } else {
            System.err.println("usage: java -cp 'lib/*' Check.java gen DIR | check DIR");
            System.exit(2);
        }
    }
}
