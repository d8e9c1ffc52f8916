//! Alert mails: the alert view of `report::alert_view` rendered through
//! the templates, as text and HTML alternatives.

use crate::report::alert_view::AlertView;
use crate::report::templates::{TemplateError, Templates};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart};

/// Longest subject: long senders are cut, the count stays.
const MAX_SUBJECT: usize = 150;

/// The mail of `view`.
pub fn build(
    from: Mailbox,
    to: &[Mailbox],
    view: &AlertView,
    templates: &Templates,
) -> Result<Message, String> {
    let text = templates
        .alert_text(view)
        .map_err(|e: TemplateError| e.to_string())?;
    let html = templates.alert_html(view).map_err(|e| e.to_string())?;
    let mut subject = format!("[smtp-auth-insight] {}", view.title);
    if subject.len() > MAX_SUBJECT {
        let cut = (0..=MAX_SUBJECT - 3)
            .rev()
            .find(|i| subject.is_char_boundary(*i))
            .unwrap_or(0);
        subject.truncate(cut);
        subject.push_str("...");
    }
    let mut builder = Message::builder().from(from).subject(subject);
    for rcpt in to {
        builder = builder.to(rcpt.clone());
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html)),
        )
        .map_err(|e| e.to_string())
}
