//! Running schedules: a one-second tick decides which schedules are due and
//! queues their report mails.

use super::{ScheduleConfig, due_slot, parse_cron};
use crate::config::Config;
use crate::notify::message::{self, DEFAULT_TOP, ReportMail};
use crate::notify::outbox::Outbox;
use crate::report::templates::Templates;
use crate::report::{RangeError, ResolvedRange, normalize_domain};
use crate::store::Store;
use chrono::{DateTime, Utc};
use croner::Cron;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_cron_scheduler::{Job, JobScheduler};

/// What a run needs.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    pub templates: Arc<Templates>,
    pub outbox: Outbox,
    /// Asked to count every acknowledged event before a report is built.
    pub ingester: crate::ingest::Ingester,
}

/// Starts the ticker when there are schedules; keep the scheduler alive.
pub async fn start(ctx: Context) -> anyhow::Result<Option<JobScheduler>> {
    if ctx.config.schedules.is_empty() {
        return Ok(None);
    }
    // Parsed once here; the config check already refused bad expressions.
    let crons: Arc<Vec<Cron>> = Arc::new(
        ctx.config
            .schedules
            .iter()
            .map(|s| parse_cron(&s.cron))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
    );
    let busy = Arc::new(AtomicBool::new(false));
    let scheduler = JobScheduler::new().await?;
    scheduler
        .add(Job::new_async("* * * * * *", move |_, _| {
            let (ctx, busy, crons) = (ctx.clone(), busy.clone(), crons.clone());
            Box::pin(async move {
                // A slow run (a large report) must not overlap the next tick.
                if busy.swap(true, Ordering::AcqRel) {
                    return;
                }
                let result =
                    tokio::task::spawn_blocking(move || tick(&ctx, &crons, Utc::now())).await;
                if let Ok(Err(e)) | Err(e) = result.map_err(|e| e.to_string()) {
                    tracing::error!(error = %e, "schedule run failed");
                }
                busy.store(false, Ordering::Release);
            })
        })?)
        .await?;
    scheduler.start().await?;
    Ok(Some(scheduler))
}

/// Queues the report of every schedule with a slot due at `now`.
fn tick(ctx: &Context, crons: &[Cron], now: DateTime<Utc>) -> Result<(), String> {
    for (s, cron) in ctx.config.schedules.iter().zip(crons) {
        let Some(last) = ctx.outbox.schedule_mark(&s.name) else {
            // First sight of this schedule: start counting slots from now,
            // rather than mailing a report the moment it is configured.
            ctx.outbox.set_schedule_mark(&s.name, now)?;
            continue;
        };
        let tz = s.timezone.unwrap_or(ctx.config.timezone).0;
        if let Some(slot) = due_slot(cron, tz, last, now) {
            run(ctx, s, slot, tz)?;
        }
    }
    Ok(())
}

fn run(
    ctx: &Context,
    s: &ScheduleConfig,
    slot: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<(), String> {
    let today = slot.with_timezone(&tz).date_naive();
    let (start, end) = s.range.days(today);
    let now = Utc::now();
    let start = start.max(ctx.store.oldest_day(now));
    ctx.ingester.sync_blocking().map_err(|e| e.to_string())?;
    if start > end {
        return Err(RangeError::Reversed { start, end }.to_string());
    }
    let range = ResolvedRange {
        start,
        end,
        domain: normalize_domain(s.domain.as_deref()).map_err(|e| e.to_string())?,
    };
    let report = ctx.store.report_range(&range).map_err(|e| e.to_string())?;
    let top = ctx.config.report.top_senders.unwrap_or(DEFAULT_TOP);
    let mut mail = ReportMail::new(&report, &ctx.templates, top).map_err(|e| e.to_string())?;
    if let Some(subject) = &s.subject {
        mail.subject = subject.clone();
    }
    let recipients = ctx.config.mail.check_recipients(&s.recipients)?;
    let from = ctx.config.mail.from_mailbox()?;
    let msg = message::build(from, &recipients, mail).map_err(|e| e.to_string())?;
    let id = format!("schedule-{}-{}", s.name, slot.format("%Y%m%dT%H%M%SZ"));
    ctx.outbox
        .enqueue_marked(&id, &msg, Some((&s.name, slot)))?;
    tracing::info!(schedule = s.name, %slot, %start, %end, "scheduled report queued");
    Ok(())
}
