// KafkaJS 2.2 against a real keel serve: an idempotent producer, a group consumer that reads
// every record back, and a transactional producer that must be refused at once (issue 11,
// item 3: before, KafkaJS retried FindCoordinator for ~9 s and said only "Failed to find
// group coordinator"). Exits non-zero with the reason on any failure.
const { Kafka, logLevel } = require('kafkajs');

const bootstrap = process.argv[2];
if (!bootstrap) {
  console.error('usage: node compat.js HOST:PORT');
  process.exit(2);
}
const kafka = new Kafka({ clientId: 'keel-kafkajs', brokers: [bootstrap], logLevel: logLevel.ERROR });
const topic = 'kafkajs-compat';
const COUNT = 20;

function fail(message) {
  console.error(message);
  process.exit(1);
}

async function produceAndConsume() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < COUNT; i++) messages.push({ key: `k${i}`, value: `v${i}` });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: 'kafkajs-group' });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen.size} of ${COUNT} records`)), 30000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.set(message.key.toString(), message.value.toString());
        if (seen.size === COUNT) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  for (let i = 0; i < COUNT; i++) {
    if (seen.get(`k${i}`) !== `v${i}`) fail(`record k${i}: got ${seen.get(`k${i}`)}`);
  }
  console.log(`kafkajs: produced and consumed ${COUNT} records through a group`);
}

async function transactionsAreRefusedAtOnce() {
  const producer = kafka.producer({ transactionalId: 'tx-kafkajs', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const started = Date.now();
  try {
    await producer.transaction();
    fail('kafkajs: producer.transaction() succeeded, but Keel has no transactions');
  } catch (e) {
    const took = Date.now() - started;
    if (e.retriable) fail(`kafkajs: a retriable error: ${e.name}: ${e.message}`);
    // Before, KafkaJS retried for ~9 s; its own retry budget is far above this.
    if (took > 5000) fail(`kafkajs: refused only after ${took} ms`);
    console.log(`kafkajs: transaction refused in ${took} ms: ${e.name}: ${e.message}`);
  } finally {
    await producer.disconnect();
  }
}

(async () => {
  await produceAndConsume();
  await transactionsAreRefusedAtOnce();
})().catch((e) => fail(`kafkajs: ${e.stack || e}`));
