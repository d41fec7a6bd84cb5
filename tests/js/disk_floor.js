// KafkaJS 2.2 against a broker below its free-space floor (issue 15, item 1): a produce and a
// createTopics must fail promptly with the broker's refusal, not after KafkaJS's retries.
// The topic given exists; the broker was started with a floor it cannot meet. Prints what
// KafkaJS reported (README quotes it); exits non-zero with the reason otherwise.
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic] = process.argv.slice(2);
if (!bootstrap || !topic) {
  console.error('usage: node disk_floor.js HOST:PORT TOPIC');
  process.exit(2);
}
const BUDGET_MS = 30000;
const kafka = new Kafka({
  clientId: 'keel-kafkajs-floor',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 5 },
});

function describe(e) {
  return `${e.name}${e.type ? ` (${e.type})` : ''}: ${e.message}; retriable=${e.retriable}`;
}

async function timed(what, f) {
  const started = Date.now();
  try {
    await f();
  } catch (e) {
    const took = Date.now() - started;
    if (took > BUDGET_MS / 2) throw new Error(`${what}: took ${took} ms: not told promptly (${describe(e)})`);
    console.log(`kafkajs ${what}: ${describe(e)} (${took} ms)`);
    return;
  }
  throw new Error(`${what}: succeeded below the floor`);
}

async function main() {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await timed('send', () => producer.send({ topic, acks: -1, timeout: BUDGET_MS, messages: [{ value: 'refused' }] }));
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await timed('createTopics', () => admin.createTopics({ topics: [{ topic: 'kafkajs-floor-new' }] }));
  await admin.disconnect();
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
