"""A broker below its free-space floor refuses produce (issue 15, item 1): each Python client
must hand the application an error promptly, not retry it silently until its own timeout.
Exits non-zero, saying which client did not; otherwise prints what each client reported
(README quotes it). The topic exists already; the broker was started with a floor it cannot
meet (--min-free-bytes far above the disk's size)."""

import argparse
import asyncio
import sys
import time

BUDGET_S = 30.0  # each client's own timeout; failing fast means well inside it


def kafka_python(bootstrap, topic):
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5,
                             request_timeout_ms=int(BUDGET_S * 1000),
                             max_block_ms=int(BUDGET_S * 1000))
    try:
        producer.send(topic, b"refused", partition=0).get(timeout=BUDGET_S)
    except KafkaTimeoutError as e:
        raise AssertionError(f"kafka-python: timed out instead of being told: {e!r}")
    except Exception as e:  # the broker's refusal, whatever class the client maps it to
        return f"{type(e).__name__}: {e}"
    finally:
        producer.close(timeout=1)
    raise AssertionError("kafka-python: the produce succeeded")


def aiokafka(bootstrap, topic):
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaTimeoutError

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    request_timeout_ms=int(BUDGET_S * 1000))
        await producer.start()
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, b"refused", partition=0),
                                   BUDGET_S)
        except (KafkaTimeoutError, asyncio.TimeoutError) as e:
            raise AssertionError(f"aiokafka: timed out instead of being told: {e!r}")
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        finally:
            await producer.stop()
        raise AssertionError("aiokafka: the produce succeeded")

    return asyncio.run(run())


def confluent_kafka(bootstrap, topic):
    from confluent_kafka import KafkaError, Producer

    reports = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True,
                         "message.timeout.ms": int(BUDGET_S * 1000)})
    producer.produce(topic, b"refused", partition=0,
                     on_delivery=lambda err, msg: reports.append(err))
    producer.flush(BUDGET_S)
    assert reports, "confluent-kafka: no delivery report"
    err = reports[0]
    assert err is not None, "confluent-kafka: the produce succeeded"
    assert err.code() == KafkaError.POLICY_VIOLATION, f"confluent-kafka: {err}"
    assert not err.fatal(), f"confluent-kafka: a fatal error poisons the producer: {err}"
    # The producer is still usable: the refusal is per message, not per producer.
    return f"{err.name()}: {err.str()}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    for name, check in [("kafka-python", kafka_python), ("aiokafka", aiokafka),
                        ("confluent-kafka", confluent_kafka)]:
        started = time.monotonic()
        shown = check(args.bootstrap, args.topic)
        took = time.monotonic() - started
        if took > BUDGET_S / 2:
            sys.exit(f"{name}: took {took:.1f}s of its {BUDGET_S:.0f}s budget: not told promptly")
        print(f"{name}: {shown} ({took:.2f}s)")


if __name__ == "__main__":
    main()
