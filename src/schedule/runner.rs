//! Running schedules: a one-second tick decides which schedules are due and
//! queues their report mails through the mailer.

use super::{ScheduleConfig, due_slot, parse_cron};
use crate::ingest::{IngestError, Ingester};
use crate::outbox::{Outbox, OutboxError, marks};
use crate::report::{RangeError, ResolvedRange, normalize_domain};
use crate::reports::mail::{Mailer, MailerError};
use crate::store::Store;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::sync::Arc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

/// Why a schedule could not run; the next tick tries again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Mailer(#[from] MailerError),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Why the schedules could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("schedules.cron: {0}")]
    Cron(String),
    #[error("cannot start the scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
}

/// What a run needs.
#[derive(Clone)]
pub(crate) struct Context {
    /// `[[schedules]]`.
    pub schedules: Arc<Vec<ScheduleConfig>>,
    /// Zone of schedules that name none: the top-level `timezone`.
    pub tz: Tz,
    pub store: Store,
    pub mailer: Mailer,
    /// Where each schedule's last slot is marked.
    pub outbox: Outbox,
    /// Asked to count every acknowledged event before a report is built.
    pub(crate) ingester: Ingester,
}

/// Starts the ticker when there are schedules. It stops on `shutdown`,
/// after the run under way (if any) has queued its mail; the returned
/// task ends then.
pub(crate) async fn start(
    ctx: Context,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    if ctx.schedules.is_empty() {
        return Ok(tokio::spawn(async {}));
    }
    // Parsed once here; the config check already refused bad expressions.
    let crons: Arc<Vec<Cron>> = Arc::new(
        ctx.schedules
            .iter()
            .map(|s| parse_cron(&s.cron))
            .collect::<Result<_, _>>()
            .map_err(StartError::Cron)?,
    );
    // Held by a run: a slow run (a large report) must not overlap the next
    // tick, and shutdown waits for it.
    let running = Arc::new(tokio::sync::Mutex::new(()));
    let scheduler = JobScheduler::new().await?;
    let job_running = running.clone();
    scheduler
        .add(Job::new_async("* * * * * *", move |_, _| {
            let (ctx, running, crons) = (ctx.clone(), job_running.clone(), crons.clone());
            Box::pin(async move {
                let Ok(_guard) = running.try_lock() else {
                    return;
                };
                let result =
                    tokio::task::spawn_blocking(move || tick(&ctx, &crons, Utc::now())).await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "schedule run failed"),
                    Err(e) => tracing::error!(error = %e, "schedule run stopped"),
                }
            })
        })?)
        .await?;
    scheduler.start().await?;
    Ok(tokio::spawn(async move {
        shutdown.cancelled().await;
        let mut scheduler = scheduler;
        if let Err(e) = scheduler.shutdown().await {
            tracing::warn!(error = %e, "stopping the scheduler");
        }
        // Wait for a run under way to finish.
        drop(running.lock().await);
    }))
}

/// Queues the report of every schedule with a slot due at `now`.
fn tick(ctx: &Context, crons: &[Cron], now: DateTime<Utc>) -> Result<(), RunError> {
    for (s, cron) in ctx.schedules.iter().zip(crons) {
        let mark = marks::schedule(&s.name);
        let last = ctx
            .outbox
            .marks()
            .get(&mark)?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.to_utc());
        let Some(last) = last else {
            // First sight of this schedule: start counting slots from now,
            // rather than mailing a report the moment it is configured.
            ctx.outbox.marks().set(&mark, &now.to_rfc3339())?;
            continue;
        };
        let tz = s.timezone.map_or(ctx.tz, |z| z.0);
        if let Some(slot) = due_slot(cron, tz, last, now) {
            run(ctx, s, slot, tz)?;
        }
    }
    Ok(())
}

fn run(ctx: &Context, s: &ScheduleConfig, slot: DateTime<Utc>, tz: Tz) -> Result<(), RunError> {
    let today = slot.with_timezone(&tz).date_naive();
    let (start, end) = s.range.days(today);
    let start = start.max(ctx.store.oldest_day(Utc::now()));
    ctx.ingester.sync_blocking()?;
    if start > end {
        return Err(RangeError::Reversed { start, end }.into());
    }
    let range = ResolvedRange {
        start,
        end,
        domain: normalize_domain(s.domain.as_deref())?,
    };
    let recipients = ctx.mailer.recipients(&s.recipients)?;
    let id = format!("schedule-{}-{}", s.name, slot.format("%Y%m%dT%H%M%SZ"));
    let mark = (marks::schedule(&s.name), slot.to_rfc3339());
    ctx.mailer.queue(
        &id,
        &range,
        &recipients,
        s.subject.as_deref(),
        Some((&mark.0, &mark.1)),
    )?;
    tracing::info!(schedule = s.name, %slot, %start, %end, "scheduled report queued");
    Ok(())
}
