//! Alert mails: the alert view of `report::alert_view` rendered through
//! the templates, as text and HTML alternatives.

use super::alerts::NotifyError;
use crate::report::alert_view::AlertView;
use crate::report::templates::Templates;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart};

/// Longest subject: long senders are cut, the count stays.
const MAX_SUBJECT: usize = 150;

/// The mail of `view`.
pub(crate) fn build(
    from: Mailbox,
    to: &[Mailbox],
    view: &AlertView,
    templates: &Templates,
) -> Result<Message, NotifyError> {
    let text = templates.alert_text(view)?;
    let html = templates.alert_html(view)?;
    let mut subject = format!("[smtp-auth-insight] {}", view.title);
    if subject.len() > MAX_SUBJECT {
        let cut = (0..=MAX_SUBJECT - 3)
            .rev()
            .find(|i| subject.is_char_boundary(*i))
            .unwrap_or(0);
        subject.truncate(cut);
        subject.push_str("...");
    }
    let builder = crate::outbox::address(Message::builder().from(from).subject(subject), to);
    Ok(builder.multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::plain(text))
            .singlepart(SinglePart::html(html)),
    )?)
}
