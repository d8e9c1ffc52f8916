//! Random identifiers: dashboard sessions and their CSRF tokens, report
//! request ids, the generated API token, file names of written mails.
//!
//! One helper, and it returns its error: an identifier that guards
//! something (a session, the API) must never silently be all zeros because
//! the system had no randomness to give.

/// The operating system gave no randomness.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the system gave no randomness: {0}")]
pub struct RandomError(getrandom::Error);

/// `bytes` random bytes as lower-case hex (two characters a byte).
pub(crate) fn hex_id(bytes: usize) -> Result<String, RandomError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(RandomError)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_asked_length_and_differ() {
        let (a, b) = (hex_id(16).unwrap(), hex_id(16).unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
