// Codec fixtures written, and our compressed samples read back, by the
// Kafka Java client's own codecs (for log-format's codec tests): the
// streams `Compression.wrapForOutput` / `wrapForInput` use for magic-2
// batches (GZIPOutputStream; snappy-java's xerial SnappyOutputStream;
// Kafka's Lz4BlockOutputStream; zstd-jni).
//
//   java -cp "$CP" GenFixtures.java gen DIR    write java-*.bin into DIR
//   java -cp "$CP" GenFixtures.java check DIR  decode DIR/ours-*.bin
//
// CP: kafka-clients 4.3.1 and its runtime dependencies (snappy-java,
// lz4-java, zstd-jni, slf4j-api). The text is the same 1000 JSON order
// events as gen_fixtures.py's and the Rust tests'.

import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.utils.BufferSupplier;
import org.apache.kafka.common.utils.ByteBufferOutputStream;

public class GenFixtures {
    static final byte MAGIC_V2 = 2;

    static byte[] ordersText() {
        StringBuilder s = new StringBuilder();
        for (int n = 0; n < 1000; n++) {
            long cents = ((long) n * 7919) % 100_000;
            s.append(String.format(
                "{\"event\":\"ORDER_PLACED\",\"orderId\":%d,\"amount\":%d.%02d,\"timestamp\":%d}\n",
                100_000 + n, cents / 100, cents % 100, 1_700_000_000_000L + n * 250L));
        }
        return s.toString().getBytes(StandardCharsets.UTF_8);
    }

    static Map<String, Compression> codecs() {
        Map<String, Compression> m = new LinkedHashMap<>();
        m.put("gzip", Compression.gzip().build());
        m.put("snappy", Compression.snappy().build());
        m.put("lz4", Compression.lz4().build());
        m.put("zstd", Compression.zstd().build());
        return m;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !(args[0].equals("gen") || args[0].equals("check"))) {
            System.err.println("usage: GenFixtures gen|check DIR");
            System.exit(2);
        }
        Path dir = Path.of(args[1]);
        byte[] text = ordersText();
        boolean failed = false;
        for (Map.Entry<String, Compression> e : codecs().entrySet()) {
            if (args[0].equals("gen")) {
                ByteBufferOutputStream buffer = new ByteBufferOutputStream(1024);
                try (OutputStream out = e.getValue().wrapForOutput(buffer, MAGIC_V2)) {
                    out.write(text);
                }
                ByteBuffer bytes = buffer.buffer().flip();
                byte[] data = new byte[bytes.remaining()];
                bytes.get(data);
                Path file = dir.resolve("java-" + e.getKey() + ".bin");
                Files.write(file, data);
                System.out.println(file.getFileName() + ": " + data.length + " bytes");
            } else {
                byte[] data = Files.readAllBytes(dir.resolve("ours-" + e.getKey() + ".bin"));
                byte[] decoded;
                try (InputStream in = e.getValue().wrapForInput(
                        ByteBuffer.wrap(data), MAGIC_V2, BufferSupplier.create())) {
                    decoded = in.readAllBytes();
                }
                boolean ok = Arrays.equals(decoded, text);
                failed |= !ok;
                System.out.println("Kafka Java client reads ours-" + e.getKey() + ".bin: "
                    + (ok ? "ok" : "MISMATCH"));
            }
        }
        System.exit(failed ? 1 : 0);
    }
}
