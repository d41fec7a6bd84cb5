"""Until Keel has transactions, each Python client's transactional producer must fail at
once, with an error the application can act on (issue 11, item 3). Exits non-zero, saying
which client did not, otherwise prints what each client reported (README quotes it)."""

import argparse
import asyncio
import sys
import time

BUDGET_S = 30.0  # each client's own timeout; failing fast means well inside it


def kafka_python(bootstrap):
    from kafka import KafkaProducer
    from kafka.errors import TransactionalIdAuthorizationFailedError

    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-kafka-python",
                             max_block_ms=int(BUDGET_S * 1000))
    try:
        producer.init_transactions()
    except TransactionalIdAuthorizationFailedError as e:
        return repr(e)
    finally:
        producer.close(timeout=1)
    raise AssertionError("kafka-python: init_transactions succeeded")


def aiokafka(bootstrap):
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import TransactionalIdAuthorizationFailed

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-aiokafka",
                                    request_timeout_ms=int(BUDGET_S * 1000))
        try:
            await asyncio.wait_for(producer.start(), BUDGET_S)
        except TransactionalIdAuthorizationFailed as e:
            return repr(e)
        finally:
            await producer.stop()
        raise AssertionError("aiokafka: start with a transactional_id succeeded")

    return asyncio.run(run())


def confluent_kafka(bootstrap):
    from confluent_kafka import KafkaException, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "tx-confluent"})
    try:
        producer.init_transactions(BUDGET_S)
    except KafkaException as e:
        err = e.args[0]
        assert err.fatal(), f"confluent-kafka: not fatal: {err}"
        assert "Keel does not support transactions yet" in err.str(), err.str()
        return err.str()
    raise AssertionError("confluent-kafka: init_transactions succeeded")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args()
    for name, check in [("kafka-python", kafka_python), ("aiokafka", aiokafka),
                        ("confluent-kafka", confluent_kafka)]:
        started = time.monotonic()
        shown = check(args.bootstrap)
        took = time.monotonic() - started
        if took > BUDGET_S / 2:
            sys.exit(f"{name}: took {took:.1f}s of its {BUDGET_S:.0f}s budget: not failing fast")
        print(f"{name}: {shown}")


if __name__ == "__main__":
    main()
