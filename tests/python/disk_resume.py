"""Writes resume once space is freed, for an idempotent producer that lives through it
(issue 15, item 2). For each client: a filler file takes the filesystem to just above the
broker's free-space floor, the producer writes until it is refused, the filler is deleted,
and the same producer must write again within the broker's next samples. aiokafka does not
resend a refused batch's sequences, so its next batch starts past them; the broker must
accept that rather than answer OUT_OF_ORDER_SEQUENCE_NUMBER for the producer's life.
kafka-python 3.0's idempotent producer (its default) turns any non-retriable produce error
into a fatal state that fails every later send without asking the broker, against Kafka
too; so kafka-python is checked with enable_idempotence=False, and what its idempotent
producer does is printed, not asserted. Exits non-zero saying which client could not write
again; prints what each one saw."""

import argparse
import asyncio
import os
import sys
import time

PAYLOAD = b"x" * 4000
RESUME_S = 20.0


def fill(filler, leave):
    """Zeros into `filler` until about `leave` bytes are available."""
    chunk = b"\0" * (1 << 20)
    with open(filler, "ab") as f:
        while True:
            st = os.statvfs(os.path.dirname(filler))
            room = st.f_bavail * st.f_frsize
            if room <= leave:
                break
            try:
                f.write(chunk[: min(len(chunk), room - leave)])
                f.flush()
            except OSError:
                break
        os.fsync(f.fileno())


def until_refused(send):
    for i in range(100_000):
        try:
            send(PAYLOAD)
        except Exception as e:  # the refusal, whatever class the client maps it to
            return i, e
    raise AssertionError("never refused")


def until_accepted(send):
    deadline = time.monotonic() + RESUME_S
    errors = []
    while time.monotonic() < deadline:
        try:
            send(b"after")
            return errors
        except Exception as e:
            errors.append(type(e).__name__)
            time.sleep(0.25)
    raise AssertionError(f"writes never resumed: {errors[-5:]}")


def check(name, send, filler, leave):
    fill(filler, leave)
    sent, refusal = until_refused(send)
    assert "PolicyViolation" in type(refusal).__name__, f"{name}: {refusal!r}"
    # Refused again: the hole in the producer's sequences grows.
    try:
        send(PAYLOAD)
        raise AssertionError(f"{name}: a second send below the floor succeeded")
    except AssertionError:
        raise
    except Exception:
        pass
    os.remove(filler)
    started = time.monotonic()
    errors = until_accepted(send)
    bad = [e for e in errors if "OutOfOrder" in e or "Sequence" in e]
    assert not bad, f"{name}: {bad}"
    print(f"{name}: {sent} accepted, then {type(refusal).__name__}; "
          f"wrote again {time.monotonic() - started:.2f}s after the filler went "
          f"(refused meanwhile: {errors})")


def kafka_python(bootstrap, topic, filler, leave):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             enable_idempotence=False, linger_ms=0)
    try:
        check("kafka-python", lambda v: producer.send(topic, v, partition=0).get(timeout=10),
              filler, leave)
    finally:
        producer.close(timeout=1)


def kafka_python_idempotent(bootstrap, topic, filler, leave):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    try:
        check("kafka-python (idempotent)",
              lambda v: producer.send(topic, v, partition=0).get(timeout=10), filler, leave)
    except AssertionError as e:
        print(f"kafka-python (idempotent), a known client limitation: {e}")
    finally:
        producer.close(timeout=1)


def aiokafka(bootstrap, topic, filler, leave):
    from aiokafka import AIOKafkaProducer

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        loop = asyncio.get_running_loop()
        try:
            def send(v):
                fut = asyncio.run_coroutine_threadsafe(
                    producer.send_and_wait(topic, v, partition=0), loop)
                return fut.result(timeout=10)
            await loop.run_in_executor(None, check, "aiokafka", send, filler, leave)
        finally:
            await producer.stop()

    asyncio.run(run())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--filler", required=True)
    parser.add_argument("--leave", type=int, required=True)
    args = parser.parse_args()
    for client in (aiokafka, kafka_python, kafka_python_idempotent):
        client(args.bootstrap, args.topic, args.filler, args.leave)


if __name__ == "__main__":
    main()
