#!/usr/bin/env python3
"""Compatibility check of one Python Kafka client against a running Keel broker.

For the client named by --client (kafka-python, aiokafka or confluent-kafka):
  1. creates a topic through the client's admin API (and checks that creating it again fails
     with TOPIC_ALREADY_EXISTS), then creates and deletes a scratch topic;
  2. produces --records keyed records with headers and explicit CreateTime timestamps, a share
     of them with each compression codec the client can use, with acks=all;
  3. consumes every partition from the beginning with manual assignment (no consumer group)
     and checks keys, values, headers, timestamps, offsets and per-partition order against
     the offsets the producer was acknowledged with;
  4. checks earliest/latest offsets and offsets looked up by timestamp;
  5. (kafka-python) consumes the topic as a consumer group, commits, and checks that a new
     member of the group resumes at the committed offsets.

Exits 0 when everything matched; otherwise prints "MISMATCH: ..." or the failure and exits 1.
Run by tests/tests/python_clients.rs; by hand:
    python3 tests/python/compat.py --bootstrap 127.0.0.1:9092 --client kafka-python
"""

import argparse
import asyncio
import sys
import time
import traceback

CLIENTS = ("kafka-python", "aiokafka", "confluent-kafka")
PARTITIONS = 3
# Fixed, strictly increasing record timestamps, so that lookups by time have known answers.
BASE_TS = 1_700_000_000_000
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TIMEOUT_S = 40


class Mismatch(Exception):
    pass


def check(ok, message):
    if not ok:
        raise Mismatch(message)


def log(message):
    print(message, flush=True)


def record(i, client):
    """The i-th record: (key, value, headers, timestamp). Some keys and values are null."""
    key = None if i % 101 == 7 else f"key-{i % 97}".encode()
    # A null value (tombstone) only where the key is set: kafka-python refuses both null.
    null_value = i % 103 == 5 and key is not None
    value = None if null_value else f"value-{i}-{'x' * (i % 40)}".encode()
    headers = [("index", str(i).encode()), ("client", client.encode())]
    if i % 3 == 0:
        headers.append(("empty", b""))
    return key, value, headers, BASE_TS + i


def codec_plan(n, codecs):
    """Splits record indexes 0..n into one contiguous chunk per codec."""
    per = -(-n // len(codecs))
    return [(c, range(k * per, min(n, (k + 1) * per))) for k, c in enumerate(codecs)]


def verify_consumed(client, sent, acked, consumed):
    """acked: (partition, offset) -> index; consumed: partition -> [(offset, key, value,
    headers, timestamp)] in the order the consumer returned them."""
    check(
        len(acked) == len(sent),
        f"{len(sent)} records sent but {len(acked)} distinct (partition, offset) acknowledged",
    )
    per_partition = {}
    for (p, off), i in sorted(acked.items()):
        per_partition.setdefault(p, []).append((off, i))
    check(
        set(per_partition) <= set(range(PARTITIONS)),
        f"acknowledged partitions {sorted(per_partition)} outside 0..{PARTITIONS}",
    )
    check(
        len(per_partition) == PARTITIONS,
        f"records landed in partitions {sorted(per_partition)} only; expected all {PARTITIONS}",
    )
    key_partition = {}
    for p, entries in per_partition.items():
        offsets = [off for off, _ in entries]
        check(
            offsets == list(range(len(entries))),
            f"partition {p}: acknowledged offsets are not 0..{len(entries) - 1}: {offsets[:10]}...",
        )
        indexes = [i for _, i in entries]
        check(
            indexes == sorted(indexes),
            f"partition {p}: records were not stored in send order: {indexes[:20]}...",
        )
        for i in indexes:
            key = sent[i][0]
            if key is not None:
                check(
                    key_partition.setdefault(key, p) == p,
                    f"key {key!r} in partitions {key_partition[key]} and {p}",
                )
    total = 0
    for p in range(PARTITIONS):
        got = consumed.get(p, [])
        want = per_partition.get(p, [])
        check(
            len(got) == len(want),
            f"partition {p}: consumed {len(got)} records, expected {len(want)}",
        )
        for (off, key, value, headers, ts), (want_off, i) in zip(got, want):
            wkey, wvalue, wheaders, wts = sent[i]
            where = f"partition {p} offset {off} (record {i})"
            check(off == want_off, f"partition {p}: offset {off} where {want_off} was expected")
            check(key == wkey, f"{where}: key {key!r}, expected {wkey!r}")
            check(value == wvalue, f"{where}: value {value!r}, expected {wvalue!r}")
            check(
                list(headers) == wheaders,
                f"{where}: headers {list(headers)!r}, expected {wheaders!r}",
            )
            check(ts == wts, f"{where}: timestamp {ts}, expected {wts}")
            total += 1
    check(total == len(sent), f"consumed {total} records, expected {len(sent)}")
    log(
        f"{client}: consumed and verified {total} records "
        f"(per partition: {[len(per_partition[p]) for p in range(PARTITIONS)]})"
    )
    return {p: len(per_partition[p]) for p in range(PARTITIONS)}


def time_probes(sent):
    n = len(sent)
    return sorted({0, 1, n // 3, n // 2, n - 1}) + [BASE_TS + n + 1_000]


def expected_offset_for_time(sent, acked, partition, ts):
    """The first offset in `partition` whose record has timestamp >= ts, or None."""
    offs = [off for (p, off), i in acked.items() if p == partition and sent[i][3] >= ts]
    return min(offs) if offs else None


def probe_timestamp(sent, probe):
    return sent[probe][3] if probe < len(sent) else probe


def check_offsets(client, sent, acked, counts, earliest, latest, by_time):
    """earliest/latest: partition -> offset; by_time: ts -> partition -> offset or None."""
    for p in range(PARTITIONS):
        check(earliest[p] == 0, f"partition {p}: earliest offset {earliest[p]}, expected 0")
        check(
            latest[p] == counts[p],
            f"partition {p}: latest offset {latest[p]}, expected {counts[p]}",
        )
    for ts, found in by_time.items():
        for p in range(PARTITIONS):
            want = expected_offset_for_time(sent, acked, p, ts)
            check(
                found[p] == want,
                f"offsets_for_times partition {p} timestamp {ts}: got {found[p]}, expected {want}",
            )
    log(f"{client}: earliest, latest and {len(by_time)} offsets_for_times lookups match")


# ---- kafka-python ---------------------------------------------------------------------------


def run_kafka_python(args, sent):
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.codec import has_lz4, has_snappy, has_zstd
    from kafka.errors import TopicAlreadyExistsError

    name = "kafka-python"
    log(f"{name} {kafka.__version__}" + (f" as Kafka {args.api_version}" if args.api_version else ""))
    common = {"api_version": args.api_version} if args.api_version else {}
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=10_000,
                             **common)
    admin.create_topics(
        {args.topic: {"num_partitions": PARTITIONS, "replication_factor": 1}}
    )
    try:
        admin.create_topics({args.topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
        raise Mismatch("creating an existing topic succeeded")
    except TopicAlreadyExistsError:
        pass
    scratch = args.topic + "-scratch"
    admin.create_topics({scratch: {"num_partitions": 2, "replication_factor": 1,
                                   "configs": {"retention.ms": "3600000"}}})
    check(scratch in admin.list_topics(), f"created topic {scratch} is not listed")
    admin.delete_topics([scratch])
    check(scratch not in admin.list_topics(), f"deleted topic {scratch} is still listed")
    described = admin.describe_topics([args.topic])
    check(
        len(described) == 1 and len(described[0]["partitions"]) == PARTITIONS,
        f"describe_topics: {described!r}",
    )
    admin.close()
    log(f"{name}: admin created, listed, described and deleted topics")

    # zstd needs Produce v7 (Kafka 2.1); kafka-python refuses it for an older api_version.
    old_broker = args.api_version is not None and args.api_version < (2, 1)
    available = {"none": True, "gzip": True, "snappy": has_snappy(), "lz4": has_lz4(),
                 "zstd": has_zstd() and not old_broker}
    codecs = [c for c in CODECS if available[c]]
    log(f"{name}: codecs {codecs}")
    acked = {}
    for codec, idx in codec_plan(len(sent), codecs):
        # kafka-python 3's default producer is idempotent (InitProducerId, sequence numbers):
        # left at its default on purpose.
        producer = KafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks="all",
            compression_type=None if codec == "none" else codec,
            linger_ms=5,
            **common,
        )
        futures = []
        for i in idx:
            key, value, headers, ts = sent[i]
            futures.append((i, producer.send(args.topic, key=key, value=value, headers=headers,
                                             timestamp_ms=ts)))
        producer.flush(timeout=TIMEOUT_S)
        for i, f in futures:
            md = f.get(timeout=TIMEOUT_S)
            check((md.partition, md.offset) not in acked,
                  f"offset {md.partition}/{md.offset} acknowledged twice")
            acked[(md.partition, md.offset)] = i
        producer.close()
    log(f"{name}: produced {len(acked)} records")

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        **common,
    )
    tps = [TopicPartition(args.topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    consumed = {}
    deadline = time.monotonic() + TIMEOUT_S
    n = 0
    while n < len(sent) and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                consumed.setdefault(tp.partition, []).append(
                    (m.offset, m.key, m.value, m.headers, m.timestamp))
                n += 1
    counts = verify_consumed(name, sent, acked, consumed)
    # kafka-python 3 fetches through a KIP-227 session when the broker opens one (Fetch v7+):
    # the records above came through incremental fetches. (Its handlers are internals; a
    # kafka-python without them, or pinned to an older Kafka, is not checked.)
    handlers = getattr(getattr(consumer, "_fetcher", None), "_session_handlers", None)
    if handlers is not None and (args.api_version is None or args.api_version >= (1, 1)):
        for _ in range(3):
            check(not consumer.poll(timeout_ms=200), "records after the end of the topic")
        sessions = [(h.next_metadata.session_id, h.next_metadata.epoch) for h in handlers.values()]
        check(any(sid != 0 and epoch > 1 for sid, epoch in sessions),
              f"no incremental fetch session was used: {sessions}")
        log(f"{name}: consumed through fetch sessions {sessions}")

    earliest = {tp.partition: o for tp, o in consumer.beginning_offsets(tps).items()}
    latest = {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
    by_time = {}
    for probe in time_probes(sent):
        ts = probe_timestamp(sent, probe)
        found = consumer.offsets_for_times({tp: ts for tp in tps})
        by_time[ts] = {tp.partition: (None if v is None else v.offset) for tp, v in found.items()}
    consumer.close()
    check_offsets(name, sent, acked, counts, earliest, latest, by_time)
    run_kafka_python_group(args, sent, latest, common)


def run_kafka_python_group(args, sent, latest, common):
    """A consumer group: one member subscribes, reads everything from the earliest offset and
    commits; a second member of the same group finds exactly those commits and reads nothing
    again."""
    from kafka import KafkaConsumer, TopicPartition

    name = "kafka-python"
    group = args.topic + "-group"
    tps = [TopicPartition(args.topic, p) for p in range(PARTITIONS)]

    def member():
        return KafkaConsumer(
            args.topic,
            bootstrap_servers=args.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            **common,
        )

    first = member()
    n = 0
    deadline = time.monotonic() + TIMEOUT_S
    while n < len(sent) and time.monotonic() < deadline:
        for msgs in first.poll(timeout_ms=500).values():
            n += len(msgs)
    check(n == len(sent), f"group member read {n} of {len(sent)} records")
    check(set(first.assignment()) == set(tps), f"group assignment {first.assignment()!r}")
    first.commit()
    first.close()

    second = member()
    committed = {tp.partition: second.committed(tp) for tp in tps}
    check(committed == latest, f"committed offsets {committed!r}, expected {latest!r}")
    again = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for msgs in second.poll(timeout_ms=300).values():
            again += len(msgs)
    check(again == 0, f"a new member re-read {again} committed records")
    check(set(second.assignment()) == set(tps), f"second assignment {second.assignment()!r}")
    second.close()
    log(f"{name}: group {group} consumed, committed and resumed at {committed}")


# ---- aiokafka -------------------------------------------------------------------------------


async def run_aiokafka_async(args, sent):
    import aiokafka
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.codec import has_lz4, has_snappy, has_zstd

    name = "aiokafka"
    log(f"{name} {aiokafka.__version__}")

    def topic_errors(response):
        obj = response.to_object()
        return {t["topic"]: t["error_code"] for t in obj["topic_errors"]}

    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        r = await admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)])
        check(topic_errors(r) == {args.topic: 0}, f"create_topics: {r.to_object()!r}")
        r = await admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)])
        check(topic_errors(r) == {args.topic: 36},
              f"creating an existing topic: expected TOPIC_ALREADY_EXISTS (36): {r.to_object()!r}")
        scratch = args.topic + "-scratch"
        r = await admin.create_topics(
            [NewTopic(scratch, 2, 1, topic_configs={"retention.ms": "3600000"})])
        check(topic_errors(r) == {scratch: 0}, f"create_topics: {r.to_object()!r}")
        check(scratch in await admin.list_topics(), f"created topic {scratch} is not listed")
        r = await admin.delete_topics([scratch])
        codes = {t["topic"]: t["error_code"] for t in r.to_object()["topic_error_codes"]}
        check(codes == {scratch: 0}, f"delete_topics: {r.to_object()!r}")
        check(scratch not in await admin.list_topics(), f"deleted topic {scratch} is still listed")
    finally:
        await admin.close()
    log(f"{name}: admin created, listed and deleted topics")

    available = {"none": True, "gzip": True, "snappy": has_snappy(), "lz4": has_lz4(),
                 "zstd": has_zstd()}
    codecs = [c for c in CODECS if available[c]]
    log(f"{name}: codecs {codecs}")
    acked = {}
    for codec, idx in codec_plan(len(sent), codecs):
        producer = AIOKafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks="all",
            compression_type=None if codec == "none" else codec,
            linger_ms=5,
            enable_idempotence=True,
        )
        await producer.start()
        try:
            futures = []
            for i in idx:
                key, value, headers, ts = sent[i]
                fut = await producer.send(args.topic, key=key, value=value, headers=headers,
                                          timestamp_ms=ts)
                futures.append((i, fut))
            await producer.flush()
            for i, fut in futures:
                md = await asyncio.wait_for(fut, TIMEOUT_S)
                check((md.partition, md.offset) not in acked,
                      f"offset {md.partition}/{md.offset} acknowledged twice")
                acked[(md.partition, md.offset)] = i
        finally:
            await producer.stop()
    log(f"{name}: produced {len(acked)} records")

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(args.topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        consumed = {}
        deadline = time.monotonic() + TIMEOUT_S
        n = 0
        while n < len(sent) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batches.items():
                for m in msgs:
                    consumed.setdefault(tp.partition, []).append(
                        (m.offset, m.key, m.value, list(m.headers), m.timestamp))
                    n += 1
        counts = verify_consumed(name, sent, acked, consumed)

        earliest = {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()}
        latest = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
        by_time = {}
        for probe in time_probes(sent):
            ts = probe_timestamp(sent, probe)
            found = await consumer.offsets_for_times({tp: ts for tp in tps})
            by_time[ts] = {tp.partition: (None if v is None else v.offset)
                           for tp, v in found.items()}
    finally:
        await consumer.stop()
    check_offsets(name, sent, acked, counts, earliest, latest, by_time)


def run_aiokafka(args, sent):
    asyncio.run(run_aiokafka_async(args, sent))


# ---- confluent-kafka ------------------------------------------------------------------------


def run_confluent_kafka(args, sent):
    import confluent_kafka
    from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError,
                                 KafkaException, Producer, TopicPartition)
    from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

    name = "confluent-kafka"
    version = confluent_kafka.version()
    version = version[0] if isinstance(version, tuple) else version
    log(f"{name} {version} (librdkafka {confluent_kafka.libversion()[0]})")
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for f in admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)],
                                 operation_timeout=10).values():
        f.result(timeout=TIMEOUT_S)
    again = admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)])[args.topic]
    try:
        again.result(timeout=TIMEOUT_S)
        raise Mismatch("creating an existing topic succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS,
              f"creating an existing topic: expected TOPIC_ALREADY_EXISTS, got {e}")
    scratch = args.topic + "-scratch"
    admin.create_topics([NewTopic(scratch, 2, 1, config={"retention.ms": "3600000"})])[
        scratch].result(timeout=TIMEOUT_S)
    check(scratch in admin.list_topics(timeout=10).topics, f"created topic {scratch} not listed")
    admin.delete_topics([scratch], operation_timeout=10)[scratch].result(timeout=TIMEOUT_S)
    check(scratch not in admin.list_topics(timeout=10).topics,
          f"deleted topic {scratch} is still listed")
    log(f"{name}: admin created, listed and deleted topics")

    codecs = list(CODECS)  # librdkafka in the wheel has every codec built in
    log(f"{name}: codecs {codecs}")
    acked = {}
    errors = []
    for codec, idx in codec_plan(len(sent), codecs):
        producer = Producer({
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "compression.codec": codec,
            "linger.ms": 5,
            "enable.idempotence": False,
        })

        def on_delivery(err, msg, i=None):
            if err is not None:
                errors.append(f"record {i}: {err}")
                return
            acked_key = (msg.partition(), msg.offset())
            if acked_key in acked:
                errors.append(f"offset {acked_key} acknowledged twice")
            acked[acked_key] = i

        for i in idx:
            key, value, headers, ts = sent[i]
            while True:
                try:
                    producer.produce(args.topic, key=key, value=value, headers=headers,
                                     timestamp=ts,
                                     on_delivery=lambda err, msg, i=i: on_delivery(err, msg, i))
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        left = producer.flush(TIMEOUT_S)
        check(left == 0, f"{left} records still undelivered after {TIMEOUT_S} s ({codec})")
    check(not errors, f"delivery failed: {errors[:5]}")
    log(f"{name}: produced {len(acked)} records")

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "keel-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    consumed = {}
    deadline = time.monotonic() + TIMEOUT_S
    n = 0
    while n < len(sent) and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=500, timeout=0.5):
            check(m.error() is None, f"consume error: {m.error()}")
            consumed.setdefault(m.partition(), []).append(
                (m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1]))
            n += 1
    counts = verify_consumed(name, sent, acked, consumed)

    earliest, latest = {}, {}
    for p in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10,
                                                   cached=False)
        earliest[p], latest[p] = low, high
    by_time = {}
    for probe in time_probes(sent):
        ts = probe_timestamp(sent, probe)
        found = consumer.offsets_for_times(
            [TopicPartition(args.topic, p, ts) for p in range(PARTITIONS)], timeout=10)
        by_time[ts] = {}
        for tp in found:
            check(tp.error is None, f"offsets_for_times {tp}: {tp.error}")
            by_time[ts][tp.partition] = None if tp.offset == OFFSET_END else tp.offset
    consumer.close()
    check_offsets(name, sent, acked, counts, earliest, latest, by_time)

    # The same through the admin API (ListOffsets from the AdminClient).
    specs = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest()}
    for what, spec in specs.items():
        futures = admin.list_offsets(
            {TopicPartition(args.topic, p): spec for p in range(PARTITIONS)})
        for tp, f in futures.items():
            off = f.result(timeout=TIMEOUT_S).offset
            want = 0 if what == "earliest" else counts[tp.partition]
            check(off == want,
                  f"admin list_offsets {what} partition {tp.partition}: {off}, expected {want}")
    ts = probe_timestamp(sent, len(sent) // 2)
    futures = admin.list_offsets(
        {TopicPartition(args.topic, p): OffsetSpec.for_timestamp(ts) for p in range(PARTITIONS)})
    for tp, f in futures.items():
        off = f.result(timeout=TIMEOUT_S).offset
        want = expected_offset_for_time(sent, acked, tp.partition, ts)
        check(off == (-1 if want is None else want),
              f"admin list_offsets for_timestamp partition {tp.partition}: {off}, expected {want}")
    log(f"{name}: AdminClient.list_offsets earliest, latest and by timestamp match")


# ---- Topic configuration APIs ------------------------------------------------------------------
# Not part of the per-client runs above. tests/tests/admin_configs.rs imports this module and
# calls configs_check(client, bootstrap, topic, phase): phase "change" runs against a fresh
# broker and changes things; phase "after-restart" runs against the same data directory after
# the broker restarted and checks that every change is still there.

def configs_kafka_python(bootstrap, topic, phase):
    """kafka-python: describe_configs (topic and broker), create_partitions, alter_configs
    (which uses IncrementalAlterConfigs when advertised) and its INVALID_CONFIG message."""
    import kafka.errors as Errors
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    topic_resource = ConfigResource(ConfigResourceType.TOPIC, topic)

    def topic_configs():
        return admin.describe_configs([topic_resource], config_filter="all")["topic"][topic]

    try:
        if phase == "change":
            admin.create_topics([NewTopic(topic, 2, 1)])
            c = topic_configs()["retention.ms"]
            check((c["value"], c["config_source"]) == ("604800000", "DEFAULT_CONFIG"),
                  f"default retention.ms: {c}")
            admin.create_partitions({topic: 6}, validate_only=True)
            admin.create_partitions({topic: 4})
            try:
                admin.create_partitions({topic: 3})
                check(False, "shrinking to 3 partitions was accepted")
            except Errors.InvalidPartitionsError as e:
                check("would not be an increase" in str(e), f"shrink message: {e}")
            r = admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "3600000"})])
            check(r["topic"][topic] == "OK", f"alter retention.ms: {r}")
            r = admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.bytes": "big"})])
            result = r["topic"][topic]
            check("InvalidConfiguration" in result and "segment.bytes" in result
                  and "integer in [14," in result, f"INVALID_CONFIG message: {result}")
            log(f"kafka-python: INVALID_CONFIG surfaced as {result!r}")
        partitions = admin.describe_topics([topic])[0]["partitions"]
        check(len(partitions) == 4, f"{len(partitions)} partitions, expected 4")
        c = topic_configs()
        check((c["retention.ms"]["value"], c["retention.ms"]["config_source"])
              == ("3600000", "DYNAMIC_TOPIC_CONFIG"), f"retention.ms: {c['retention.ms']}")
        check(c["segment.bytes"]["value"] == "1073741824", f"segment.bytes: {c['segment.bytes']}")
        broker = admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")["broker"]["1"]
        check(broker["num.partitions"]["read_only"], f"num.partitions: {broker['num.partitions']}")
        check(broker["broker.id"]["value"] == "1", f"broker.id: {broker['broker.id']}")
        # kafka-python sends DescribeCluster itself (v2, with authorized operations and fenced
        # brokers); librdkafka's describe_cluster goes through Metadata instead.
        cluster = admin.describe_cluster()
        host, port = bootstrap.rsplit(":", 1)
        check([(b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"]]
              == [(1, host, int(port))], f"describe_cluster brokers: {cluster['brokers']}")
        check(cluster["controller_id"] == 1 and cluster["cluster_id"] == "keel-cluster",
              f"describe_cluster: {cluster}")
        # DescribeLogDirs: one directory, absolute, holding the topic's partitions; a topic
        # filter narrows it to the partitions asked for.
        dirs = admin.describe_log_dirs()
        check(len(dirs) == 1 and len(dirs[0]["log_dirs"]) == 1, f"describe_log_dirs: {dirs}")
        only = dirs[0]["log_dirs"][0]
        check(only["error_code"] == 0 and only["log_dir"].startswith("/"),
              f"log dir: {only['log_dir']!r}")
        check(only["total_bytes"] > 0 and 0 <= only["usable_bytes"] <= only["total_bytes"],
              f"volume sizes: {only['total_bytes']} total, {only['usable_bytes']} usable")
        ours = [t for t in only["topics"] if t["name"] == topic]
        check(len(ours) == 1 and sorted(p["partition_index"] for p in ours[0]["partitions"])
              == [0, 1, 2, 3], f"log dir partitions of {topic}: {ours}")
        check(all(p["partition_size"] >= 0 and p["offset_lag"] == 0 and not p["is_future_key"]
                  for p in ours[0]["partitions"]), f"log dir partition fields: {ours}")
        narrowed = admin.describe_log_dirs({topic: [1]})[0]["log_dirs"][0]["topics"]
        check([(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in narrowed]
              == [(topic, [1])], f"describe_log_dirs of {topic}-1: {narrowed}")
        log(f"kafka-python: configs and partitions checked ({phase})")
    finally:
        admin.close()


def configs_confluent_kafka(bootstrap, topic, phase):
    """confluent-kafka: incremental_alter_configs (SET, DELETE, an APPEND that is refused with
    INVALID_CONFIG and its message), describe_configs and describe_cluster."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, ConfigSource, NewTopic)

    admin = AdminClient({"bootstrap.servers": bootstrap})

    def incremental(*entries):
        resource = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=op) for name, value, op in entries])
        return admin.incremental_alter_configs([resource])[resource].result(timeout=TIMEOUT_S)

    def topic_configs():
        resource = ConfigResource("topic", topic)
        return admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)

    if phase == "change":
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=TIMEOUT_S)
        incremental(("retention.ms", "7200000", AlterConfigOpType.SET),
                    ("max.message.bytes", "500000", AlterConfigOpType.SET),
                    ("segment.ms", "60000", AlterConfigOpType.SET))
        incremental(("segment.ms", None, AlterConfigOpType.DELETE))
        try:
            # cleanup.policy is a list of delete and compact (Kafka 3.9's ValidList): an
            # APPEND of any other word is refused (kafka_answers.py checks the valid ones).
            incremental(("cleanup.policy", "archive", AlterConfigOpType.APPEND))
            check(False, "cleanup.policy=delete,archive was accepted")
        except KafkaException as e:
            err = e.args[0]
            check(err.code() == KafkaError.INVALID_CONFIG, f"APPEND refused with {err}")
            check("cleanup.policy" in err.str() and "delete,archive" in err.str(),
                  f"INVALID_CONFIG message: {err.str()}")
            log(f"confluent-kafka: INVALID_CONFIG surfaced as {err.str()!r}")
        cluster = admin.describe_cluster(include_authorized_operations=True).result(
            timeout=TIMEOUT_S)
        host, port = bootstrap.rsplit(":", 1)
        check(len(cluster.nodes) == 1 and cluster.nodes[0].port == int(port)
              and cluster.nodes[0].host == host, f"describe_cluster nodes: {cluster.nodes}")
        check(cluster.controller is not None and cluster.controller.id == 1,
              f"controller: {cluster.controller}")
        check(cluster.cluster_id == "keel-cluster", f"cluster id: {cluster.cluster_id}")
        log(f"confluent-kafka: describe_cluster {cluster.cluster_id} {cluster.nodes}")
    c = topic_configs()
    retention = c["retention.ms"]
    # The C layer may hand the source over as an int or as a ConfigSource.
    source = lambda entry: getattr(entry.source, "value", entry.source)  # noqa: E731
    check((retention.value, source(retention))
          == ("7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), f"retention.ms: {retention}")
    check(c["max.message.bytes"].value == "500000", f"max.message.bytes: {c['max.message.bytes']}")
    check(source(c["segment.ms"]) == ConfigSource.DEFAULT_CONFIG.value,
          f"segment.ms after DELETE: {c['segment.ms']}")
    check(c["cleanup.policy"].value == "delete", f"cleanup.policy: {c['cleanup.policy']}")
    log(f"confluent-kafka: configs checked ({phase})")


def configs_check(client, bootstrap, topic, phase):
    """Runs one client's configs check; returns the process exit code (0 = all matched)."""
    runner = {"kafka-python": configs_kafka_python,
              "confluent-kafka": configs_confluent_kafka}[client]
    try:
        runner(bootstrap, topic, phase)
    except Mismatch as e:
        print(f"MISMATCH ({client} configs, {phase}): {e}", file=sys.stderr, flush=True)
        return 1
    except Exception:  # noqa: BLE001 - any client error is a failure to report
        print(f"FAILED ({client} configs, {phase}):", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    return 0


RUNNERS = {
    "kafka-python": run_kafka_python,
    "aiokafka": run_aiokafka,
    "confluent-kafka": run_confluent_kafka,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of the broker")
    parser.add_argument("--client", required=True, choices=CLIENTS)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--topic", help="topic to create (default: compat-CLIENT)")
    parser.add_argument(
        "--api-version",
        help="kafka-python only: pretend the broker is this Kafka version (e.g. 1.0), so the "
        "client uses that release's request versions instead of the newest ones",
    )
    args = parser.parse_args()
    if args.api_version:
        if args.client != "kafka-python":
            parser.error("--api-version is for kafka-python")
        args.api_version = tuple(int(x) for x in args.api_version.split("."))
    args.topic = args.topic or f"compat-{args.client}"
    sent = [record(i, args.client) for i in range(args.records)]
    started = time.monotonic()
    try:
        RUNNERS[args.client](args, sent)
    except Mismatch as e:
        print(f"MISMATCH ({args.client}): {e}", file=sys.stderr, flush=True)
        return 1
    except Exception:  # noqa: BLE001 - any client error is a failure to report
        print(f"FAILED ({args.client}):", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    log(f"{args.client}: OK in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
