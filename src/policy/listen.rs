//! Where the policy service listens, and who may speak to it.
//!
//! A UNIX socket is the safe choice on the MTA's own machine: the socket
//! is mode 0660 with group `policy.socket_group` (Postfix's group), so
//! other local users cannot connect at all, and the kernel's word on each
//! peer (`SO_PEERCRED`) is checked again before a request is read. On a TCP
//! port every local user is a loopback peer: only `policy.allow` stands
//! between them and the service.

use crate::event::Network;
use serde::{Deserialize, Deserializer};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// `policy.listen`: `"127.0.0.1:10040"` or `"unix:/path/to/socket"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyListen {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for PolicyListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyListen::Inet(a) => write!(f, "{a}"),
            PolicyListen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for PolicyListen {
    type Err = String;

    fn from_str(s: &str) -> Result<PolicyListen, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            return match path.is_absolute() && path.file_name().is_some() {
                true => Ok(PolicyListen::Unix(path)),
                false => Err(format!(
                    "{s:?}: a socket needs an absolute path, such as \"unix:/var/spool/postfix/smtp-auth-insight/policy\""
                )),
            };
        }
        s.parse().map(PolicyListen::Inet).map_err(|_| {
            format!(
                "{s:?} is neither an address and port such as \"127.0.0.1:10040\" nor a socket \
                 such as \"unix:/var/spool/postfix/smtp-auth-insight/policy\""
            )
        })
    }
}

impl<'de> Deserialize<'de> for PolicyListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Who may speak to the service.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    /// TCP peers: their address must lie in one of these.
    pub allow: Vec<Network>,
    /// Local peers: root, the daemon's own user, or a process whose group
    /// is this one (the socket's).
    pub group: u32,
}

/// A connected peer, as the kernel names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Peer {
    Ip(IpAddr),
    Local { uid: u32, gid: u32 },
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Ip(ip) => write!(f, "{ip}"),
            Peer::Local { uid, gid } => write!(f, "local uid {uid} gid {gid}"),
        }
    }
}

impl Peers {
    /// Whether `peer` may speak.
    pub(crate) fn admits(&self, peer: Peer) -> bool {
        match peer {
            Peer::Ip(ip) => self.allow.iter().any(|n| n.contains(ip)),
            Peer::Local { uid, gid } => {
                uid == 0 || uid == crate::process::ids().0 || gid == self.group
            }
        }
    }
}

/// A bound listener of either kind.
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The socket file is removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

/// A connection of either kind.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Why the service cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {listen} (policy.listen): {source}")]
    Bind {
        listen: PolicyListen,
        source: std::io::Error,
    },
    #[error("{0} (policy.listen) exists and is not a socket; remove it or choose another path")]
    NotSocket(PathBuf),
    #[error("{0} (policy.listen) is in use: another policy service answers on it")]
    InUse(PathBuf),
    #[error("no group {0:?} (policy.socket_group) on this system")]
    NoGroup(String),
    #[error(
        "cannot give {path} (policy.listen) mode 0660 and group {group}: {source}; the daemon's user must be a member of the group (SupplementaryGroups= in its unit)"
    )]
    Permissions {
        path: PathBuf,
        group: String,
        source: std::io::Error,
    },
}

impl Listener {
    /// Listens on `listen`; a socket gets mode 0660 and `group` (None: the
    /// daemon's own). Returns the listener and the group whose processes
    /// may speak on a socket.
    pub(crate) async fn bind(
        listen: &PolicyListen,
        group: Option<&str>,
    ) -> Result<(Listener, u32), ListenError> {
        let own = crate::process::ids().1;
        let gid = match group {
            Some(name) => crate::process::group_id(name)
                .ok_or_else(|| ListenError::NoGroup(name.to_owned()))?,
            None => own,
        };
        let bind_err = |source| ListenError::Bind {
            listen: listen.clone(),
            source,
        };
        match listen {
            PolicyListen::Inet(addr) => Ok((
                Listener::Tcp(TcpListener::bind(addr).await.map_err(bind_err)?),
                gid,
            )),
            PolicyListen::Unix(path) => {
                clear_stale(path).await?;
                let listener = UnixListener::bind(path).map_err(bind_err)?;
                let listener = Listener::Unix(listener, path.clone());
                permit(path, gid).map_err(|source| ListenError::Permissions {
                    path: path.clone(),
                    group: group.map_or_else(|| gid.to_string(), str::to_owned),
                    source,
                })?;
                Ok((listener, gid))
            }
        }
    }

    /// What to write to the address file: the bound address or the socket.
    pub(crate) fn address(&self) -> std::io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            Listener::Unix(_, path) => Ok(format!("unix:{}", path.display())),
        }
    }

    /// The next connection and its peer.
    pub(crate) async fn accept(&self) -> std::io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                Ok((Stream::Tcp(s), Peer::Ip(addr.ip().to_canonical())))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                let cred = s.peer_cred()?;
                let peer = Peer::Local {
                    uid: cred.uid(),
                    gid: cred.gid(),
                };
                Ok((Stream::Unix(s), peer))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes a socket left by a daemon that is gone; refuses a file that is
/// no socket, or a socket something still answers on.
async fn clear_stale(path: &Path) -> Result<(), ListenError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotSocket(path.to_path_buf()));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(ListenError::InUse(path.to_path_buf()));
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Mode 0660 and group `gid` for the socket at `path`.
fn permit(path: &Path, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, None, Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_an_address_or_an_absolute_socket_path() {
        assert_eq!(
            "127.0.0.1:10040".parse::<PolicyListen>(),
            Ok(PolicyListen::Inet("127.0.0.1:10040".parse().unwrap()))
        );
        assert_eq!(
            "unix:/run/x/policy".parse::<PolicyListen>(),
            Ok(PolicyListen::Unix("/run/x/policy".into()))
        );
        for bad in ["unix:relative/policy", "unix:", "localhost:10040", "10040"] {
            let e = bad.parse::<PolicyListen>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn peers_outside_allow_and_local_users_of_other_groups_are_refused() {
        let peers = Peers {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
            group: 4321,
        };
        assert!(peers.admits(Peer::Ip("127.0.0.1".parse().unwrap())));
        assert!(peers.admits(Peer::Ip("::1".parse().unwrap())));
        assert!(!peers.admits(Peer::Ip("192.0.2.1".parse().unwrap())));
        assert!(peers.admits(Peer::Local { uid: 0, gid: 0 }), "root");
        assert!(
            peers.admits(Peer::Local {
                uid: 777,
                gid: 4321
            }),
            "the socket's group"
        );
        let me = crate::process::ids().0;
        assert!(
            peers.admits(Peer::Local { uid: me, gid: 1 }),
            "the daemon's user"
        );
        let other = if me == 1000 { 1001 } else { 1000 };
        assert!(
            !peers.admits(Peer::Local {
                uid: other,
                gid: 65534
            }),
            "another user"
        );
    }
}
