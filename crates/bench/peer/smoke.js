'use strict';

// A standalone check of server.js, without the Rust bench: a scratch database on
// TEST_DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432/postgres), the peer
// started on it, one purchase seeded, a checkout.session.completed event signed with
// stripe-node's generateTestHeaderString delivered twice (and once badly signed), the status
// read with an HS256 token, the database checked. Exits non-zero on the first failure.
//
//   npm run smoke

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const net = require('node:net');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const pg = require('pg');
const Stripe = require('stripe');

const serverUrl = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `lms_bench_peer_smoke_${process.pid}`;
const databaseUrl = (() => {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();
const secrets = {
  JWT_SECRET: crypto.randomBytes(32).toString('hex'),
  STRIPE_SECRET_KEY: 'sk_test_peer_smoke',
  STRIPE_WEBHOOK_SECRET: 'whsec_peer_smoke',
};
const stripe = new Stripe(secrets.STRIPE_SECRET_KEY);

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function admin(sql) {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function waitHealthy(base, child) {
  for (let i = 0; i < 100; i += 1) {
    if (child.exitCode !== null) throw new Error(`the peer exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${base}/api/v1/healthcheck`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the peer never answered its healthcheck');
}

function event(purchaseId, amount) {
  return {
    id: `evt_smoke_${crypto.randomBytes(8).toString('hex')}`,
    object: 'event',
    type: 'checkout.session.completed',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: {
      object: {
        id: `cs_test_${crypto.randomBytes(8).toString('hex')}`,
        object: 'checkout.session',
        amount_total: amount,
        currency: 'usd',
        payment_status: 'paid',
        status: 'complete',
        payment_intent: `pi_${crypto.randomBytes(8).toString('hex')}`,
        client_reference_id: purchaseId,
        metadata: { purchase_id: purchaseId },
      },
    },
  };
}

async function deliver(base, payload, secret = secrets.STRIPE_WEBHOOK_SECRET) {
  const body = JSON.stringify(payload);
  const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret });
  const response = await fetch(`${base}/api/v1/payments/webhook`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Stripe-Signature': header },
    body,
  });
  return { status: response.status, body: await response.json() };
}

async function main() {
  await admin(`CREATE DATABASE ${database}`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js')], {
    env: { ...process.env, ...secrets, DATABASE_URL: databaseUrl, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await waitHealthy(base, child);
    const ids = Object.fromEntries(['instructor', 'buyer', 'course', 'purchase', 'other'].map((k) => [k, crypto.randomUUID()]));
    await db.query(
      `INSERT INTO peer_users (id, name, email, role) VALUES
         ($1, 'Instructor', 'instructor@smoke.test', 'instructor'), ($2, 'Buyer', 'buyer@smoke.test', 'student')`,
      [ids.instructor, ids.buyer],
    );
    await db.query(
      `INSERT INTO peer_courses (id, instructor_id, title, price_cents, currency, published)
       VALUES ($1, $2, 'Smoke course', 1999, 'USD', true)`,
      [ids.course, ids.instructor],
    );
    await db.query(
      `INSERT INTO peer_purchases (id, user_id, course_id, amount_cents, currency, checkout_session_id)
       VALUES ($1, $2, $3, 1999, 'USD', 'cs_test_smoke')`,
      [ids.purchase, ids.buyer, ids.course],
    );
    const token = jwt.sign({ userId: ids.buyer, sessionGeneration: 0 }, secrets.JWT_SECRET, {
      algorithm: 'HS256',
      expiresIn: '1d',
    });
    const status = async (auth = `Bearer ${token}`, course = ids.course) => {
      const response = await fetch(`${base}/api/v1/payments/courses/${course}/purchase-status`, {
        headers: auth ? { Authorization: auth } : {},
      });
      return { status: response.status, body: await response.json() };
    };

    let read = await status();
    assert.equal(read.status, 200);
    assert.equal(read.body.data.purchaseStatus, 'pending');
    assert.equal(read.body.data.isPurchased, false);

    // A bad signature is refused and leaves nothing behind.
    const paid = event(ids.purchase, 1999);
    const forged = await deliver(base, paid, 'whsec_not_ours');
    assert.equal(forged.status, 400);
    assert.equal((await db.query('SELECT count(*)::int AS n FROM peer_events')).rows[0].n, 0);

    // The first delivery completes the purchase; the duplicate is acknowledged, not applied.
    assert.deepEqual(await deliver(base, paid), { status: 200, body: { received: true } });
    const after = (await db.query('SELECT status, payment_intent_id, updated_at FROM peer_purchases WHERE id = $1', [ids.purchase])).rows[0];
    assert.equal(after.status, 'completed');
    assert.equal(after.payment_intent_id, paid.data.object.payment_intent);
    assert.deepEqual(await deliver(base, paid), { status: 200, body: { received: true } });
    const again = (await db.query('SELECT updated_at FROM peer_purchases WHERE id = $1', [ids.purchase])).rows[0];
    assert.equal(again.updated_at.getTime(), after.updated_at.getTime(), 'the duplicate wrote the purchase again');
    assert.equal((await db.query('SELECT count(*)::int AS n FROM peer_events')).rows[0].n, 1);

    // An event for a purchase that does not exist, and one with the wrong amount: recorded, 200,
    // nothing completed.
    assert.equal((await deliver(base, event(ids.other, 1999))).status, 200);
    await db.query(
      `INSERT INTO peer_purchases (id, user_id, course_id, amount_cents, currency) VALUES ($1, $2, $3, 1999, 'USD')`,
      [ids.other, ids.instructor, ids.course],
    );
    assert.equal((await deliver(base, event(ids.other, 999))).status, 200);
    assert.equal((await db.query('SELECT status FROM peer_purchases WHERE id = $1', [ids.other])).rows[0].status, 'pending');

    read = await status();
    assert.equal(read.status, 200);
    assert.equal(read.body.success, true);
    assert.equal(read.body.data.purchaseStatus, 'completed');
    assert.equal(read.body.data.isPurchased, true);
    assert.equal(read.body.data.course.id, ids.course);
    assert.equal(read.body.data.course.priceCents, 1999);
    assert.equal(read.body.data.course.price, 19.99);
    assert.equal(read.body.data.purchase.id, ids.purchase);
    assert.equal(read.body.data.purchase.amountCents, 1999);
    assert.deepEqual(Object.keys(read.body.data.purchase).sort(), [
      'amountCents', 'courseId', 'createdAt', 'currency', 'id', 'refundedCents', 'status', 'updatedAt', 'userId',
    ]);
    assert.equal((await status(null)).status, 401);
    assert.equal((await status('Bearer nope')).status, 401);
    const stale = jwt.sign({ userId: ids.buyer, sessionGeneration: 1 }, secrets.JWT_SECRET, { expiresIn: '1d' });
    assert.equal((await status(`Bearer ${stale}`)).status, 401);
    assert.equal((await status(undefined, crypto.randomUUID())).status, 404);
    assert.equal((await status(undefined, 'not-a-uuid')).status, 404);
    console.log('peer smoke test: ok');
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
    await db.end();
    await admin(`DROP DATABASE IF EXISTS ${database}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
