//! Building report mails: a text part and an HTML part as alternatives, and
//! the complete sender table as a CSV attachment. Building is apart from
//! sending, so the same message goes to SMTP or to a file.

use crate::report::render::csv;
use crate::report::templates::{TemplateError, Templates};
use crate::report::view::Charts;
use crate::report::{Report, chart};
use lettre::Message;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};

/// The parts of a report mail, already rendered.
pub struct ReportMail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Inline images referenced from the HTML as `cid:<name>`.
    pub images: Vec<(String, Vec<u8>)>,
    pub csv: String,
    pub csv_name: String,
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

pub fn build(
    from: Mailbox,
    to: &[Mailbox],
    mail: ReportMail,
) -> Result<Message, lettre::error::Error> {
    let mut builder = Message::builder().from(from).subject(mail.subject);
    for rcpt in to {
        builder = builder.to(rcpt.clone());
    }
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
