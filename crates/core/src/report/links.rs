//! Links into the dashboard, built the same way by its own pages and by
//! alert mails, so that a link in a mail always opens the page it names.

/// Percent-encodes a query or path component (everything but unreserved),
/// so that a hostile sender name cannot add a path, a query or markup.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Path of a sender's page, relative to the dashboard's base URL.
pub fn sender_path(sender: &str) -> String {
    format!("/senders/{}", encode(sender))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded_whole() {
        assert_eq!(encode("<img src=x>@x"), "%3Cimg%20src%3Dx%3E%40x");
        assert_eq!(sender_path("a/../b?c"), "/senders/a%2F..%2Fb%3Fc");
    }
}
