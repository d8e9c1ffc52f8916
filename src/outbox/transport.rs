//! Delivering a built message: over SMTP (STARTTLS, implicit TLS or plain,
//! optional AUTH) or into `.eml` files, chosen by `[mail] transport`.

use super::config::{MailConfig, Security, TransportKind};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configured transport cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("mail.ca_file {}: {message}", .path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("mail: cannot set up TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Password(String),
    #[error("mail.username is set but no mail.password")]
    NoPassword,
}

/// Why a delivery failed; temporary failures are worth retrying.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("temporary failure: {0}")]
    Temporary(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Where mail goes: `[mail] transport`.
pub enum Transport {
    File(PathBuf),
    Smtp {
        client: AsyncSmtpTransport<Tokio1Executor>,
        /// Longest a whole delivery may take: 4 × mail.timeout_seconds.
        deadline: Duration,
    },
}

impl Transport {
    /// The configured transport; `data_dir` hosts the file transport's
    /// default directory.
    pub(crate) fn from_config(
        c: &MailConfig,
        data_dir: &Path,
    ) -> Result<Transport, TransportError> {
        if c.transport == TransportKind::File {
            return Ok(Transport::File(
                c.dir.clone().unwrap_or_else(|| data_dir.join("mail")),
            ));
        }
        let tls = || -> Result<TlsParameters, TransportError> {
            let mut params = TlsParameters::builder(c.host.clone());
            if let Some(ca) = &c.ca_file {
                let ca_error = |message: String| TransportError::CaFile {
                    path: ca.clone(),
                    message,
                };
                let pem = std::fs::read(ca).map_err(|e| ca_error(e.to_string()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
                params = params.add_root_certificate(cert);
            }
            params
                .build()
                .map_err(|e| TransportError::Tls(e.to_string()))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone())
            .port(c.port)
            .timeout(Some(Duration::from_secs(c.timeout_seconds)));
        b = match c.security {
            Security::None => b.tls(Tls::None),
            Security::Starttls => b.tls(Tls::Required(tls()?)),
            Security::Tls => b.tls(Tls::Wrapper(tls()?)),
        };
        if let Some(user) = &c.username {
            let password = c
                .password()
                .resolve()
                .map_err(TransportError::Password)?
                .ok_or(TransportError::NoPassword)?;
            b = b.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Transport::Smtp {
            client: b.build(),
            deadline: Duration::from_secs(c.timeout_seconds.max(1) * 4),
        })
    }

    /// Delivers `message`; for the file transport returns the file written.
    pub async fn send(&self, message: &Message) -> Result<Option<PathBuf>, SendError> {
        let envelope = message.envelope();
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        let to: Vec<String> = envelope.to().iter().map(|a| a.to_string()).collect();
        self.send_raw(&from, &to, &message.formatted()).await
    }

    /// Delivers an already formatted message to an envelope (the outbox
    /// stores mails in this form).
    pub(crate) async fn send_raw(
        &self,
        from: &str,
        to: &[String],
        message: &[u8],
    ) -> Result<Option<PathBuf>, SendError> {
        let (smtp, deadline) = match self {
            Transport::File(dir) => return write_eml(dir, message).await.map(Some),
            Transport::Smtp { client, deadline } => (client, *deadline),
        };
        let bad = |e: String| SendError::Permanent(format!("bad envelope: {e}"));
        let from = match from {
            "" => None,
            f => Some(
                f.parse::<lettre::Address>()
                    .map_err(|e| bad(e.to_string()))?,
            ),
        };
        let to = to
            .iter()
            .map(|t| t.parse::<lettre::Address>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let envelope = Envelope::new(from, to).map_err(|e| bad(e.to_string()))?;
        // lettre bounds connecting, not a relay that goes silent mid-way;
        // without this a stuck relay would hold the outbox indefinitely.
        match tokio::time::timeout(deadline, smtp.send_raw(&envelope, message)).await {
            Ok(result) => smtp_result(result),
            Err(_) => Err(SendError::Temporary(format!(
                "the relay did not finish within {} s",
                deadline.as_secs()
            ))),
        }
    }
}

fn smtp_result<T>(
    r: Result<T, lettre::transport::smtp::Error>,
) -> Result<Option<PathBuf>, SendError> {
    match r {
        Ok(_) => Ok(None),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
        Err(e) => Err(SendError::Temporary(e.to_string())),
    }
}

/// Writes the message as `<unique>.eml`, through a temporary name so that
/// a reader never sees half a mail.
async fn write_eml(dir: &Path, message: &[u8]) -> Result<PathBuf, SendError> {
    let io = |e: std::io::Error| SendError::Temporary(format!("{}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let unique = crate::random::hex_id(8).map_err(|e| SendError::Temporary(e.to_string()))?;
    let name = format!("{}-{unique}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    tokio::fs::write(&tmp, message).await.map_err(io)?;
    tokio::fs::rename(&tmp, &path).await.map_err(io)?;
    Ok(path)
}
