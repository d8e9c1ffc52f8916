//! Report mails: a text part and an HTML part as alternatives, and the
//! complete sender table as a CSV attachment.
//!
//! One composer for every way a report is mailed: `report --send` on the
//! command line, `POST /api/v1/reports`, the dashboard's form and the
//! schedules. Building is apart from sending (as in lettre): the CLI hands
//! the message to a transport, everything else to the durable outbox.

use crate::outbox::{MailConfig, Outbox, OutboxError, RecipientError};
use crate::report::render::csv;
use crate::report::templates::{TemplateError, Templates};
use crate::report::view::Charts;
use crate::report::{RangeError, Report, ResolvedRange, chart};
use crate::store::{Store, StoreError};
use lettre::Message;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use std::sync::Arc;

/// Why a report mail was not composed or queued.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// A recipient outside `mail.allowed_recipients`, or not an address.
    #[error(transparent)]
    Recipients(#[from] RecipientError),
    /// A range that cannot be reported (reversed, beyond retention).
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot build the mail: {0}")]
    Message(#[from] lettre::error::Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What queueing a report mail needs.
#[derive(Clone)]
pub struct Mailer {
    store: Store,
    templates: Arc<Templates>,
    outbox: Outbox,
    /// `[mail]`: the sender and the recipients' allow-list.
    mail: Arc<MailConfig>,
    /// Senders listed in a mail body (`report.top_senders`).
    top: usize,
}

impl Mailer {
    pub fn new(
        store: Store,
        templates: Arc<Templates>,
        outbox: Outbox,
        mail: Arc<MailConfig>,
        top: usize,
    ) -> Mailer {
        Mailer {
            store,
            templates,
            outbox,
            mail,
            top,
        }
    }

    /// `recipients` as mailboxes, when every one is allowed.
    pub fn recipients(&self, recipients: &[String]) -> Result<Vec<Mailbox>, MailerError> {
        Ok(self.mail.check_recipients(recipients)?)
    }

    /// Builds the report of `range`, composes its mail to `to` and queues
    /// it as mail `id`, setting `mark` with it (see `Outbox::enqueue`).
    /// Blocking: reads the store, renders charts, fsyncs the queue.
    pub fn queue(
        &self,
        id: &str,
        range: &ResolvedRange,
        to: &[Mailbox],
        subject: Option<&str>,
        mark: Option<(&str, &str)>,
    ) -> Result<(), MailerError> {
        let report = super::build_range(&self.store, range)?;
        let message = compose(&self.templates, &self.mail, self.top, &report, to, subject)?;
        self.outbox.enqueue(id, &message, mark)?;
        Ok(())
    }
}

/// The report mail of `report` to `to`, from `mail.from`, listing `top`
/// senders in its body; `subject` replaces the generated one.
pub fn compose(
    templates: &Templates,
    mail: &MailConfig,
    top: usize,
    report: &Report,
    to: &[Mailbox],
    subject: Option<&str>,
) -> Result<Message, MailerError> {
    let mut parts = ReportMail::new(report, templates, top)?;
    if let Some(subject) = subject {
        parts.subject = subject.to_owned();
    }
    Ok(build(mail.sender_mailbox()?, to, parts)?)
}

/// The parts of a report mail, already rendered.
pub struct ReportMail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Inline images referenced from the HTML as `cid:<name>`.
    pub(crate) images: Vec<(String, Vec<u8>)>,
    pub csv: String,
    pub(crate) csv_name: String,
}

/// Senders listed in a mail body unless `report.top_senders` says otherwise.
pub const DEFAULT_TOP: usize = 25;

impl ReportMail {
    /// Renders `report` through the templates; the first line of every
    /// part is the number of SMTP AUTH senders.
    pub fn new(
        report: &Report,
        templates: &Templates,
        top: usize,
    ) -> Result<ReportMail, TemplateError> {
        let scope = match report.domain.as_deref() {
            None => String::new(),
            Some("") => " (senders without a domain)".to_owned(),
            Some(d) => format!(" ({d})"),
        };
        Ok(ReportMail {
            subject: format!(
                "SMTP AUTH report {} to {}{scope}: {} senders",
                report.start, report.end, report.summary.senders
            ),
            text: templates.text(report, top)?,
            html: templates.html(
                report,
                top,
                Charts {
                    volume: "cid:volume".into(),
                    tls: "cid:tls".into(),
                },
            )?,
            images: vec![
                ("volume".into(), chart::volume_png(report)),
                ("tls".into(), chart::tls_png(report)),
            ],
            csv: csv(report),
            csv_name: format!("smtp-auth-senders-{}-{}.csv", report.start, report.end),
        })
    }
}

/// The message of `mail`, from `from` to `to`.
pub fn build(
    from: Mailbox,
    to: &[Mailbox],
    mail: ReportMail,
) -> Result<Message, lettre::error::Error> {
    let builder = crate::outbox::address(Message::builder().from(from).subject(mail.subject), to);
    // HTML and its images travel together in multipart/related.
    let mut related = MultiPart::related().singlepart(SinglePart::html(mail.html));
    let png = ContentType::parse("image/png").unwrap_or(ContentType::TEXT_PLAIN);
    for (cid, bytes) in mail.images {
        related = related.singlepart(Attachment::new_inline(cid).body(bytes, png.clone()));
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(mail.text))
        .multipart(related);
    // Base64 keeps the attachment byte for byte (RFC 4180's CRLF line ends
    // would be rewritten in a text encoding).
    let csv_body = Body::new_with_encoding(mail.csv.into_bytes(), ContentTransferEncoding::Base64)
        .unwrap_or_else(Body::new);
    let csv_type = ContentType::parse("text/csv; charset=utf-8").unwrap_or(ContentType::TEXT_PLAIN);
    let csv = Attachment::new(mail.csv_name).body(csv_body, csv_type);
    builder.multipart(MultiPart::mixed().multipart(body).singlepart(csv))
}
