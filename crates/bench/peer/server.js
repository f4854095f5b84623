'use strict';

// The compare benchmark's peer: the two routes `compare` measures, written the way a competent
// hand-written Express service would do the same job (crates/bench/README.md, "The peer").
//
//   POST /api/v1/payments/webhook
//     raw body -> stripe.webhooks.constructEvent -> one transaction on the pool:
//     record the event id (a duplicate stops there and answers 200), lock the purchase the
//     session names, complete it when paid in full, commit.
//   GET /api/v1/payments/courses/:courseId/purchase-status
//     HS256 JWT (Authorization: Bearer, or the `token` cookie) -> the user -> the course ->
//     the user's latest purchase of it; the app's JSON shape.
//   GET /api/v1/healthcheck
//
// Its tables (peer_*, schema.sql) are its own: it never reads the app's. One process, one pg
// Pool of PG_POOL_SIZE connections (10, the app's default DATABASE_POOL_SIZE), no per-request
// logging.
//
// Environment: DATABASE_URL, JWT_SECRET, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET (required);
// PORT (4100), HOST (127.0.0.1), PG_POOL_SIZE (10).

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const jwt = require('jsonwebtoken');
const pg = require('pg');
const Stripe = require('stripe');

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(78);
  }
  return value;
}

const config = {
  port: Number(process.env.PORT || 4100),
  host: process.env.HOST || '127.0.0.1',
  databaseUrl: required('DATABASE_URL'),
  jwtSecret: required('JWT_SECRET'),
  stripeKey: required('STRIPE_SECRET_KEY'),
  webhookSecret: required('STRIPE_WEBHOOK_SECRET'),
  poolSize: Number(process.env.PG_POOL_SIZE || 10),
};

// bigint columns (amounts) as numbers: they are far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: config.poolSize });
pool.on('error', (err) => console.error('idle pg client error', err));

// Webhook verification is local (HMAC-SHA256 of the raw body): the key is never used here.
const stripe = new Stripe(config.stripeKey);

// The HS256 key as a KeyObject, made once. jsonwebtoken 9 also takes the secret as a string, but
// then tries to parse it as a PEM public key first on every verify (through OpenSSL), which
// costs about 340 us per call here against 8 us with the KeyObject.
const jwtKey = crypto.createSecretKey(Buffer.from(config.jwtSecret, 'utf8'));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Webhook

async function handleEvent(event) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const recorded = await client.query(
      'INSERT INTO peer_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING',
      [event.id, event.type],
    );
    if (recorded.rowCount === 0) {
      // Seen before: already applied (or ignored) once.
      await client.query('COMMIT');
      return 'duplicate';
    }
    let outcome = 'ignored';
    if (event.type === 'checkout.session.completed') {
      outcome = await completeCheckout(client, event);
    }
    await client.query('COMMIT');
    return outcome;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function completeCheckout(client, event) {
  const session = event.data.object;
  const purchaseId = session.client_reference_id || (session.metadata && session.metadata.purchase_id);
  if (!purchaseId || !UUID.test(purchaseId)) return 'unmatched';
  const { rows } = await client.query(
    'SELECT id, status, amount_cents, currency FROM peer_purchases WHERE id = $1 FOR UPDATE',
    [purchaseId],
  );
  const purchase = rows[0];
  if (!purchase) return 'unmatched';
  if (purchase.status !== 'pending') return 'already decided';
  const paidInFull =
    session.payment_status === 'paid' &&
    session.amount_total === purchase.amount_cents &&
    String(session.currency).toUpperCase() === purchase.currency;
  if (!paidInFull) return 'not paid in full';
  await client.query(
    `UPDATE peer_purchases
        SET status = 'completed', payment_intent_id = $2, paid_at = to_timestamp($3), updated_at = now()
      WHERE id = $1`,
    [purchase.id, session.payment_intent, event.created],
  );
  return 'applied';
}

// ---------------------------------------------------------------------------------------------
// Authentication and the status read

function tokenOf(req) {
  const header = req.get('authorization');
  if (header) {
    const [scheme, token] = header.trim().split(/\s+/, 2);
    if (scheme.toLowerCase() === 'bearer' && token) return token;
  }
  const cookie = req.get('cookie');
  if (cookie) {
    const match = /(?:^|;\s*)token=([^;]+)/.exec(cookie);
    if (match) return decodeURIComponent(match[1]);
  }
  return null;
}

async function authenticate(req, res, next) {
  try {
    const token = tokenOf(req);
    if (!token) throw new HttpError(401, 'UNAUTHORIZED', 'Not authenticated. Please sign in.');
    let claims;
    try {
      claims = jwt.verify(token, jwtKey, { algorithms: ['HS256'], clockTolerance: 5 });
    } catch {
      throw new HttpError(401, 'UNAUTHORIZED', 'Invalid or expired token. Please sign in again.');
    }
    if (typeof claims.userId !== 'string' || !UUID.test(claims.userId) || claims.exp === undefined) {
      throw new HttpError(401, 'UNAUTHORIZED', 'Invalid or expired token. Please sign in again.');
    }
    const { rows } = await pool.query(
      'SELECT id, name, email, role, session_generation, created_at FROM peer_users WHERE id = $1',
      [claims.userId],
    );
    const user = rows[0];
    // Signing out moves the user to the next session generation, which ends older tokens.
    if (!user || user.session_generation !== (claims.sessionGeneration ?? 0)) {
      throw new HttpError(401, 'UNAUTHORIZED', 'Invalid or expired token. Please sign in again.');
    }
    req.user = user;
    next();
  } catch (err) {
    next(err);
  }
}

const iso = (date) => (date ? date.toISOString() : null);

function courseDto(course) {
  return {
    id: course.id,
    _id: course.id,
    title: course.title,
    subtitle: course.subtitle,
    description: course.description,
    category: course.category,
    level: course.level,
    priceCents: course.price_cents,
    price: course.price_cents / 100,
    currency: course.currency,
    isPublished: course.published,
    instructorId: course.instructor_id,
    instructor: course.instructor_id,
    createdAt: iso(course.created_at),
    updatedAt: iso(course.updated_at),
  };
}

function purchaseDto(purchase) {
  return {
    id: purchase.id,
    courseId: purchase.course_id,
    userId: purchase.user_id,
    status: purchase.status,
    amountCents: purchase.amount_cents,
    currency: purchase.currency,
    refundedCents: purchase.refunded_cents,
    createdAt: iso(purchase.created_at),
    updatedAt: iso(purchase.updated_at),
  };
}

async function purchaseStatus(req, res) {
  const { courseId } = req.params;
  if (!UUID.test(courseId)) throw new HttpError(404, 'NOT_FOUND', 'Course not found.');
  const courses = await pool.query('SELECT * FROM peer_courses WHERE id = $1', [courseId]);
  const course = courses.rows[0];
  if (!course) throw new HttpError(404, 'NOT_FOUND', 'Course not found.');
  const purchases = await pool.query(
    `SELECT * FROM peer_purchases WHERE user_id = $1 AND course_id = $2
      ORDER BY created_at DESC, id DESC LIMIT 1`,
    [req.user.id, course.id],
  );
  const purchase = purchases.rows[0] || null;
  // An unpublished course is shown only to those who bought it.
  if (!course.published && !purchase) throw new HttpError(404, 'NOT_FOUND', 'Course not found.');
  res.json({
    success: true,
    data: {
      course: courseDto(course),
      isPurchased: purchase !== null && purchase.status === 'completed',
      purchaseStatus: purchase ? purchase.status : 'not purchased',
      purchase: purchase ? purchaseDto(purchase) : null,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The app

const app = express();
app.disable('x-powered-by');

app.post(
  '/api/v1/payments/webhook',
  express.raw({ type: 'application/json', limit: '256kb' }),
  async (req, res, next) => {
    let event;
    try {
      event = stripe.webhooks.constructEvent(req.body, req.get('stripe-signature'), config.webhookSecret);
    } catch (err) {
      return next(new HttpError(400, 'WEBHOOK_SIGNATURE_INVALID', `Webhook rejected: ${err.message}`));
    }
    try {
      await handleEvent(event);
      res.json({ received: true });
    } catch (err) {
      next(err);
    }
  },
);

app.get('/api/v1/payments/courses/:courseId/purchase-status', authenticate, async (req, res, next) => {
  try {
    await purchaseStatus(req, res);
  } catch (err) {
    next(err);
  }
});

app.get('/api/v1/healthcheck', async (req, res, next) => {
  try {
    await pool.query('SELECT 1');
    res.json({ success: true, status: 'ok' });
  } catch (err) {
    next(err);
  }
});

app.use((req, res) => {
  res.status(404).json({ success: false, status: 'fail', message: 'Route not found.', code: 'NOT_FOUND' });
});

// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  const status = err instanceof HttpError ? err.status : err.status || err.statusCode || 500;
  if (status >= 500) console.error(err);
  res.status(status).json({
    success: false,
    status: status >= 500 ? 'error' : 'fail',
    message: status >= 500 ? 'Something went wrong.' : err.message,
    code: err.code || (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST'),
  });
});

async function main() {
  await pool.query(fs.readFileSync(path.join(__dirname, 'schema.sql'), 'utf8'));
  const server = app.listen(config.port, config.host, () => {
    console.log(`peer listening on http://${config.host}:${config.port} (pg pool of ${config.poolSize})`);
  });
  const stop = () => {
    server.close(() => pool.end().finally(() => process.exit(0)));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error('peer failed to start', err);
  process.exit(1);
});
