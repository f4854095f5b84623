//! Grouped commits of webhook deliveries, opt-in ([`PgStore::with_group_commit`]).
//!
//! One transaction per event caps ingest at the rate the database commits, and costs each
//! event four round trips. With grouping, the deliveries ([`DeliveryKind::Delivered`]) that
//! arrive while a group is being applied queue up, and the next group applies them together,
//! in arrival order, in one transaction. Each tokio runtime that delivers events (in the app,
//! each HTTP worker) has one or more *lanes*, each a queue and a connection of its own, driven
//! by a task on that runtime: the worker's own thread sends a group and reads its answers
//! between requests, so nothing wakes another thread (a lane on a thread of its own spent
//! more CPU on those wake-ups than grouping saved; `crates/bench/README.md`). Every event of a
//! purchase that one runtime delivers takes the same lane.
//!
//! A group first tries three round trips, whatever its size ([`all_at_once`]):
//!
//! ```text
//! BEGIN; upsert ...; lock 1; lock 2; ...          -- sent together, one answer awaited;
//!                                                    the upserts in event id order
//! UPDATE 1; UPDATE 2; ...                           -- each event's merge, sent together
//! COMMIT                                            -- only once every UPDATE has succeeded
//! ```
//!
//! If any statement fails (the transaction with it), the group is rolled back and run again
//! one event at a time, each under a savepoint ([`one_by_one`]):
//!
//! ```text
//! BEGIN
//!   SAVEPOINT event; <the event's statements, as in a transaction of its own>
//!   [ROLLBACK TO SAVEPOINT event]         -- only if one of them failed
//!   ...                                   -- the next event, up to MAX_GROUP
//! COMMIT
//! ```
//!
//! What stays true, against one transaction per event:
//! - **Exactly once.** An event's inbox row is written in the group's transaction with its
//!   merge. A redelivery in the same group sees the first delivery's row (same transaction)
//!   and is counted as a duplicate.
//! - **Each event merges into what the events before it saved**, as in transactions one
//!   after the other: [`all_at_once`] corrects what a lock read with the purchases the group
//!   saved since, so a refund queued behind its payment, or a double payment's second half,
//!   sees the first.
//! - **A failing event fails alone.** Its savepoint is rolled back (its inbox row, its update
//!   and its row locks with it), its caller gets its own error, and the others go on.
//! - **Answered after the commit.** Every caller waits for its group's `COMMIT`. If the commit
//!   or the connection fails, every caller of the group gets [`RepoError::Unavailable`] and
//!   retries; nothing of the group was saved, or (the connection lost during `COMMIT`) all of
//!   it was, and the inbox then counts the retries as redeliveries.
//! - **Deadlocks.** Within a lane there is one group at a time. Other writers lock one buyer's
//!   purchases of one course at a time, in id order as every event does, so a group can wait
//!   for them but never in a cycle. A group takes its inbox rows (in event id order) before
//!   any purchase: holding a purchase while waiting for an inbox row that another instance's
//!   transaction inserted, and that transaction then waiting for the purchase, was a cycle (the
//!   slower one-by-one path still takes them event by event). Two lanes could only wait on
//!   each other through two purchases that both their groups hold events of, in crossed
//!   order: two double payments (two purchases of one buyer and course, in different lanes of
//!   one runtime), or events of one purchase that two HTTP workers (or two instances) took at
//!   once. The server then fails one statement after `deadlock_timeout` (1 s by default), its
//!   group runs one by one, and at worst that event is answered with a retryable error, which
//!   Stripe retries.
//! - **A lane that panics starts again** ([`supervise`]). Its callers get
//!   [`RepoError::Unavailable`] and retry; the group it held committed nothing, or (a panic
//!   after its `COMMIT`) all of it, and the inbox then counts the retries as redeliveries. The
//!   next group gets a fresh connection (`lms_db_group_lane_restarts_total`).
//!
//! The cost: a group holds its events' row locks until its commit (a few milliseconds); an
//! event whose purchase another transaction holds delays the events queued behind it in its
//! lane; each lane is one more connection per HTTP worker. Measured in `crates/bench/README.md`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::QueryResult;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use lms_domain::Purchase;
use lms_ports::{Applied, Context, EventDelivery, FactUpdate, Recorded, RepoError};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::connection::ConnectSpec;
use crate::error::{from_connection, from_diesel};
use crate::per_runtime::PerRuntime;
use crate::{
    inbox_row, lock_buyers_purchases, stored_precision, upsert_event, write_merge, Merged,
};

/// The most events one group applies. Each event's savepoint that writes takes a
/// subtransaction id, and PostgreSQL keeps up to 64 of them per session in shared memory;
/// past that, every other session's visibility checks read `pg_subtrans` from disk.
pub const MAX_GROUP: usize = 32;

/// Events waiting for a group, per lane. A caller finding it full waits for room
/// (back-pressure on the HTTP workers, not an error).
const QUEUE: usize = 1024;

/// The sending side: one per store, shared by its clones. Dropping it ends the lanes, which
/// close their connections.
pub(crate) struct GroupCommit {
    spec: Option<Arc<ConnectSpec>>,
    /// Lanes per runtime, at least one.
    lanes: usize,
    /// Each runtime's lane queues, started on its first delivery there.
    by_runtime: PerRuntime<Arc<[mpsc::Sender<Job>]>>,
    /// Groups run again one event at a time ([`one_by_one`]) since the start, all lanes.
    retried: Arc<AtomicU64>,
}

struct Job {
    update: FactUpdate,
    answer: oneshot::Sender<Result<Applied, RepoError>>,
}

impl GroupCommit {
    /// `spec` is `None` when the store's settings were invalid: every event then fails as any
    /// other call does. Nothing starts before the first delivery.
    pub(crate) fn new(spec: Option<Arc<ConnectSpec>>, lanes: usize) -> Self {
        Self {
            spec,
            lanes: lanes.max(1),
            by_runtime: PerRuntime::new(),
            retried: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Groups whose fast path failed and that ran again one event at a time, since the start.
    pub(crate) fn retried(&self) -> u64 {
        // By path: diesel's `RunQueryDsl::load` is in scope too.
        AtomicU64::load(&self.retried, Ordering::Relaxed)
    }

    /// Deliveries waiting for a group, not counting the ones being applied.
    pub(crate) fn backlog(&self) -> usize {
        self.by_runtime
            .all()
            .iter()
            .flat_map(|lanes| lanes.iter())
            .map(|queue| queue.max_capacity() - queue.capacity())
            .sum()
    }

    /// Applies `update` in the next group and answers once that group has committed.
    pub(crate) async fn apply(&self, update: &FactUpdate) -> Result<Applied, RepoError> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            update: update.clone(),
            answer,
        };
        let lanes = self.runtime_lanes();
        // Every event of a purchase takes the same lane, so two groups never hold and want
        // each other's rows through events of one purchase.
        let lane = (update.purchase_id.as_uuid().as_u128() % lanes.len() as u128) as usize;
        if lanes[lane].send(job).await.is_err() {
            return Err(RepoError::unavailable(
                "the group commit lane has stopped: its runtime is shutting down",
            ));
        }
        // Unanswered: the lane panicked with this event's group and starts again
        // ([`supervise`]); a retry applies the event, or finds it recorded if the group had
        // committed.
        answered.await.unwrap_or_else(|_| {
            Err(RepoError::unavailable(
                "the group commit lane failed while applying this event",
            ))
        })
    }

    /// The lanes of the runtime this runs on, started there on its first delivery: a task
    /// each, which drives the lane's connection on the thread the deliveries come from.
    fn runtime_lanes(&self) -> Arc<[mpsc::Sender<Job>]> {
        self.by_runtime.current(|| {
            (0..self.lanes)
                .map(|lane| {
                    let (queue, jobs) = mpsc::channel(QUEUE);
                    let jobs = Arc::new(Mutex::new(jobs));
                    let (spec, retried) = (self.spec.clone(), Arc::clone(&self.retried));
                    tokio::spawn(supervise(lane, move || {
                        work(spec.clone(), Arc::clone(&jobs), Arc::clone(&retried))
                    }));
                    queue
                })
                .collect()
        })
    }
}

/// Runs a lane until `run` returns, which it does once every sender is gone, and runs it
/// again after a panic: the group the lane held is dropped unanswered (each of its callers
/// is told to retry), and the next group finds a fresh connection. Each run is a task of its
/// own, so that tokio catches its panic.
async fn supervise<F>(lane: usize, mut run: impl FnMut() -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        match tokio::spawn(run()).await {
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                metrics::counter!("lms_db_group_lane_restarts_total").increment(1);
                tracing::error!(
                    lane,
                    "a group commit lane panicked: its group's deliveries are answered with a retryable error, and the lane starts again"
                );
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        }
    }
}

/// Takes whatever has queued (up to [`MAX_GROUP`]), applies it as one group, answers, again
/// until every sender is gone. A run that panics releases `jobs` for the next.
async fn work(
    spec: Option<Arc<ConnectSpec>>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    retried: Arc<AtomicU64>,
) {
    let mut jobs = jobs.lock().await;
    let mut connection: Option<AsyncPgConnection> = None;
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let kept = connection
            .take()
            .and_then(|mut conn| (!conn.is_broken()).then_some(conn));
        let conn = match kept {
            Some(conn) => Ok(conn),
            None => connect(spec.as_deref()).await,
        };
        let outcome = match conn {
            Ok(mut conn) => {
                let outcome = apply_group(&conn, &group, &retried).await;
                // After a failed group the session may still be inside its transaction:
                // dropping the connection rolls that back, and the next group connects afresh.
                if outcome.is_ok() && !conn.is_broken() {
                    connection = Some(conn);
                }
                outcome
            }
            Err(error) => Err(error),
        };
        answer(&mut group, outcome);
    }
}

async fn connect(spec: Option<&ConnectSpec>) -> Result<AsyncPgConnection, RepoError> {
    match spec {
        Some(spec) => spec.establish().await.map_err(from_connection),
        None => Err(RepoError::unexpected(
            "invalid PostgreSQL connection settings",
        )),
    }
}

/// Sends each caller its event's result, or the group's failure.
fn answer(group: &mut Vec<Job>, outcome: Result<Vec<Result<Applied, RepoError>>, RepoError>) {
    match outcome {
        Ok(results) => {
            metrics::counter!("lms_db_group_commits_total").increment(1);
            metrics::counter!("lms_db_group_committed_events_total")
                .increment(results.len() as u64);
            tracing::debug!(events = results.len(), "group committed");
            for (job, result) in group.drain(..).zip(results) {
                // A caller that has gone (its request cancelled) is answered by the inbox
                // when the event comes again.
                let _ = job.answer.send(result);
            }
        }
        Err(error) => {
            tracing::warn!(
                events = group.len(),
                error = lms_ports::chain_text(&error),
                "a group of webhook events failed; each is answered with a retryable error"
            );
            let cause = Arc::new(error);
            for job in group.drain(..) {
                let _ = job
                    .answer
                    .send(Err(RepoError::unavailable(GroupFailed(Arc::clone(&cause)))));
            }
        }
    }
}

/// The error of every event of a group that could not commit, keeping the group's cause.
#[derive(Debug)]
struct GroupFailed(Arc<RepoError>);

impl std::fmt::Display for GroupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the group of events this one was to be committed with failed")
    }
}

impl std::error::Error for GroupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// What a group gives each of its events, in the group's order.
type Results = Vec<Result<Applied, RepoError>>;

/// One group in one transaction: each event's result, or the failure that stopped the group
/// (then nothing of it is committed).
async fn apply_group(
    conn: &AsyncPgConnection,
    group: &[Job],
    retried: &AtomicU64,
) -> Result<Results, RepoError> {
    if let Some(results) = all_at_once(conn, group).await? {
        return Ok(results);
    }
    retried.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("lms_db_group_retries_total").increment(1);
    tracing::debug!(events = group.len(), "group retried one event at a time");
    // One event failed, and with it the transaction: again from the start, each event under a
    // savepoint of its own so that it fails alone. Rare: an event of a purchase that does not
    // exist, or a lock or statement timeout.
    execute(conn, Rollback)
        .await
        .map_err(|error| unavailable("rolling back the group", error))?;
    one_by_one(conn, group).await
}

/// The group in three round trips whatever its size: `BEGIN` and every event's inbox upsert
/// and lock, sent together; then every event's writes (its merge computed from what its lock
/// read, corrected by what the events before it saved); then `COMMIT`. `Ok(None)`: a
/// statement or a merge of one of the events failed, and nothing was committed (the slower
/// [`one_by_one`] isolates it).
///
/// Every inbox upsert goes before every lock, the upserts in event id order: the group takes
/// purchase locks only once it holds all its inbox rows, and takes those in one order. Holding
/// a purchase while waiting for another event's inbox row, inserted by a transaction that then
/// waits for that purchase (the same events delivered to another instance), deadlocked a group
/// in the two-instance test; so did two groups taking the same events' rows in different
/// orders. The upserts of one event keep the order of its deliveries, so a redelivery queued
/// behind its first delivery counts as a duplicate; each lock reads only if the event's row
/// counts exactly the deliveries of it the group recorded (the event was new), so a
/// redelivery's lock reads nothing. Each event's lock is read before the events in front of
/// it have written; its merge therefore takes the purchases they saved in place of the rows it
/// read ([`Merged::of`]).
async fn all_at_once(
    conn: &AsyncPgConnection,
    group: &[Job],
) -> Result<Option<Results>, RepoError> {
    let mut deliveries = Vec::with_capacity(group.len());
    let mut rows = Vec::with_capacity(group.len());
    for job in group {
        let update = &job.update;
        // Only deliveries are queued, and their rows are built before anything is sent, so
        // that a failure here cannot leave a half-sent group.
        let Some(event) = &update.event else {
            return Ok(None);
        };
        let at = stored_precision(update.at);
        let Ok(row) = inbox_row(update, event, at) else {
            return Ok(None);
        };
        deliveries.push((update, event, at));
        rows.push(Some(row));
    }
    // Stable: the deliveries of one event keep their order.
    let mut upsert_order: Vec<usize> = (0..deliveries.len()).collect();
    upsert_order.sort_by_key(|&index| deliveries[index].1.envelope.id.as_str());
    let upserts = upsert_order
        .iter()
        .filter_map(|&index| {
            let row = rows[index].take()?;
            Some(upsert_event(conn, deliveries[index].1.kind, row))
        })
        .collect();
    let locks = deliveries
        .iter()
        .enumerate()
        .map(|(index, (update, event, _))| {
            let id = event.envelope.id.as_str();
            let of_this_event = |(_, other, _): &&(_, &EventDelivery, _)| other.envelope.id == id;
            let recorded = deliveries.iter().filter(of_this_event).count();
            // The first delivery of the event in the group reads if the row counts all the
            // group's deliveries of it (the event was new); a later one, never (no row counts 0).
            let earlier = deliveries[..index].iter().any(|d| of_this_event(&d));
            let expected = if earlier {
                0
            } else {
                i32::try_from(recorded).unwrap_or(i32::MAX)
            };
            lock_buyers_purchases(conn, update.purchase_id, Some((id, expected)))
        })
        .collect();
    let (begun, upserted, locked) =
        tokio::join!(execute(conn, Begin), in_order(upserts), in_order(locks));
    if begun.is_err() {
        return Ok(None);
    }
    let mut recorded: Vec<Option<_>> = deliveries.iter().map(|_| None).collect();
    for (index, outcome) in upsert_order.into_iter().zip(upserted) {
        recorded[index] = Some(outcome);
    }

    let mut saved: Vec<Purchase> = Vec::new();
    let mut merges = Vec::with_capacity(deliveries.len());
    for (((update, _, at), recorded), locked) in deliveries.into_iter().zip(recorded).zip(locked) {
        let (Some(Ok(recorded)), Ok(locked)) = (recorded, locked) else {
            return Ok(None);
        };
        if recorded == Recorded::Duplicate {
            merges.push((update, None));
            continue;
        }
        let Ok(merged) = Merged::of(update, locked, at, &saved) else {
            return Ok(None);
        };
        if merged.changed() {
            saved.push(merged.purchase.clone());
        }
        merges.push((update, Some(merged)));
    }
    let writes = merges
        .iter()
        .filter_map(|(update, merged)| {
            merged
                .as_ref()
                .map(|merged| write_merge(conn, update, merged))
        })
        .collect();
    // COMMIT only once every write has succeeded: sent with them, it would commit the others'
    // if one failed before reaching the server.
    if in_order(writes).await.iter().any(Result::is_err) {
        return Ok(None);
    }
    commit(conn).await?;
    Ok(Some(
        merges
            .into_iter()
            .map(|(_, merged)| Ok(merged.map_or(Applied::DuplicateEvent, Merged::into_applied)))
            .collect(),
    ))
}

/// The group in a transaction whose events each run under a savepoint of their own, one
/// after the other: an event that fails is rolled back alone and answered with its error.
async fn one_by_one(conn: &AsyncPgConnection, group: &[Job]) -> Result<Results, RepoError> {
    let mut results = Vec::with_capacity(group.len());
    for (index, job) in group.iter().enumerate() {
        results.push(apply_event(conn, index == 0, &job.update).await?);
    }
    commit(conn).await?;
    Ok(results)
}

async fn commit(conn: &AsyncPgConnection) -> Result<(), RepoError> {
    execute(conn, Commit)
        .await
        .map_err(|error| unavailable("committing the group", error))
}

/// A failure that stops the group: retryable, as nothing of it was committed (or, lost during
/// `COMMIT`, all of it was, and the inbox counts the retries as redeliveries).
fn unavailable(doing: &'static str, error: diesel::result::Error) -> RepoError {
    RepoError::unavailable(Context::new(doing, from_diesel(error)))
}

/// Polls `futures` together, each time in their order, so that the statements they send go
/// out in that order without waiting for one another's answers (pipelined on one connection).
pub(crate) async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// One event under its own savepoint, pipelined with it (and with the group's `BEGIN` for the
/// first): one round trip for `[BEGIN,] SAVEPOINT`, the inbox upsert and the lock, as a
/// transaction of its own costs for `BEGIN` alone. `Err`: the group cannot go on.
async fn apply_event(
    conn: &AsyncPgConnection,
    first: bool,
    update: &FactUpdate,
) -> Result<Result<Applied, RepoError>, RepoError> {
    let (begun, saved, applied) = if first {
        tokio::join!(
            execute(conn, Begin),
            execute(conn, Savepoint),
            crate::apply_in_transaction(conn, update)
        )
    } else {
        let (saved, applied) = tokio::join!(
            execute(conn, Savepoint),
            crate::apply_in_transaction(conn, update)
        );
        (Ok(()), saved, applied)
    };
    begun
        .and(saved)
        .map_err(|error| unavailable("opening the event's savepoint", error))?;
    match applied {
        Ok(applied) => Ok(Ok(applied)),
        Err(error) => {
            execute(conn, RollbackToSavepoint)
                .await
                .map_err(|rollback| {
                    unavailable("rolling back a failed event's savepoint", rollback)
                })?;
            Ok(Err(error.into()))
        }
    }
}

pub(crate) async fn execute<S>(conn: &AsyncPgConnection, statement: S) -> QueryResult<()>
where
    S: QueryFragment<Pg> + QueryId + Send + 'static,
{
    statement.execute(&mut &*conn).await.map(drop)
}

/// Transaction-control statements without binds, each a type of its own: a static query id
/// makes each prepared once per connection and then sent as a cached statement, which is what
/// lets it be pipelined with the statements after it (an uncached one first waits a round
/// trip of its own for its preparation).
macro_rules! fixed_statements {
    ($($name:ident = $sql:literal;)*) => {$(
        #[derive(Debug, Clone, Copy, QueryId)]
        pub(crate) struct $name;

        impl QueryFragment<Pg> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }
    )*};
}

fixed_statements! {
    Begin = "BEGIN";
    Savepoint = "SAVEPOINT event";
    RollbackToSavepoint = "ROLLBACK TO SAVEPOINT event";
    Commit = "COMMIT";
    Rollback = "ROLLBACK";
    // This transaction's commit answered without waiting for its WAL to reach the disk.
    CommitWithoutFlushWait = "SET LOCAL synchronous_commit TO OFF";
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_lane_that_panics_runs_again_until_it_returns() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        supervise(0, move || {
            let run = counted.fetch_add(1, Ordering::Relaxed) + 1;
            async move { assert!(run > 2, "a bug in the lane's work, run {run}") }
        })
        .await;
        // By path: diesel's `RunQueryDsl::load` is in scope too.
        assert_eq!(AtomicUsize::load(&runs, Ordering::Relaxed), 3);
    }
}
