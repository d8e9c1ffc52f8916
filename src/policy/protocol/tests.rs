use super::*;

/// A request as Postfix 3.7 sends it at the end of a message (attribute
/// names and order from SMTPD_POLICY_README).
const END_OF_MESSAGE: &str = "request=smtpd_access_policy
protocol_state=END-OF-MESSAGE
protocol_name=ESMTP
client_address=192.0.2.10
client_name=laptop.example.com
client_port=51234
reverse_client_name=laptop.example.com
server_address=192.0.2.1
server_port=587
helo_name=[192.0.2.10]
sender=alice@example.com
recipient=
recipient_count=2
queue_id=4Fk2Hq1Bz9z9sK
instance=12ab.6789abcd.1234.0
size=1234
etrn_domain=
stress=
sasl_method=PLAIN
sasl_username=Alice@Example.com
sasl_sender=
ccert_subject=
ccert_issuer=
ccert_fingerprint=
ccert_pubkey_fingerprint=
encryption_protocol=TLSv1.3
encryption_cipher=TLS_AES_256_GCM_SHA384
encryption_keysize=256
policy_context=
server_name=mx1.example.com
compatibility_level=3.6
mail_version=3.7.11";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

#[test]
fn an_end_of_message_request_of_an_authenticated_client_is_one_submission() {
    let r = Request::parse(END_OF_MESSAGE.as_bytes()).unwrap();
    let host: Arc<str> = Arc::from("mx1");
    let e = r.submission(&host, now()).unwrap().expect("a submission");
    assert_eq!(e.sender, "alice@example.com");
    assert_eq!(e.tls, Tls::V1_3);
    assert_eq!(e.client_ip, "192.0.2.10".parse().ok());
    assert_eq!(e.id.as_deref(), Some("mx1:4Fk2Hq1Bz9z9sK"));
    assert_eq!(e.envelope_from.as_deref(), Some("alice@example.com"));
    assert_eq!(e.host.as_deref(), Some("mx1"));
    assert_eq!(e.result, Outcome::Accepted);
}

#[test]
fn other_states_and_unauthenticated_clients_are_no_submission() {
    let host: Arc<str> = Arc::from("mx1");
    let rcpt = END_OF_MESSAGE.replace("END-OF-MESSAGE", "RCPT");
    let r = Request::parse(rcpt.as_bytes()).unwrap();
    assert_eq!(r.submission(&host, now()).unwrap(), None);
    let anonymous = END_OF_MESSAGE.replace("sasl_username=Alice@Example.com", "sasl_username=");
    let r = Request::parse(anonymous.as_bytes()).unwrap();
    assert_eq!(r.submission(&host, now()).unwrap(), None);
}

#[test]
fn no_tls_no_queue_id_and_a_null_sender_still_count() {
    let host: Arc<str> = Arc::from("mx1");
    let plain = END_OF_MESSAGE
        .replace("encryption_protocol=TLSv1.3", "encryption_protocol=")
        .replace("queue_id=4Fk2Hq1Bz9z9sK", "queue_id=")
        .replace("sender=alice@example.com", "sender=");
    let e = Request::parse(plain.as_bytes())
        .unwrap()
        .submission(&host, now())
        .unwrap()
        .unwrap();
    assert_eq!((e.tls, e.id, e.envelope_from), (Tls::None, None, None));
}

#[test]
fn a_request_that_cannot_be_understood_says_why() {
    let host: Arc<str> = Arc::from("mx1");
    assert_eq!(
        Request::parse(b"request=smtpd_access_policy\ngarbage\n"),
        Err(RequestError::NotAttribute(2))
    );
    assert_eq!(
        Request::parse(b"request=smtpd_access_policy\nsender=\xff\n"),
        Err(RequestError::NotUtf8)
    );
    assert_eq!(
        Request::parse(b"request=junk\n"),
        Err(RequestError::NotPolicy("junk".into()))
    );
    assert_eq!(
        Request::parse(b"sender=a@b\n"),
        Err(RequestError::NotPolicy(String::new()))
    );
    let hostile = END_OF_MESSAGE.replace("Alice@Example.com", "alice\u{202e}moc.live@example.com");
    let r = Request::parse(hostile.as_bytes()).unwrap();
    let e = r.submission(&host, now()).unwrap_err();
    assert!(e.to_string().contains("U+202E"), "{e}");
    let tls = END_OF_MESSAGE.replace("TLSv1.3", "SSLv9");
    let e = Request::parse(tls.as_bytes())
        .unwrap()
        .submission(&host, now())
        .unwrap_err();
    assert_eq!(e, RequestError::Tls("SSLv9".into()));
}

#[test]
fn a_value_may_hold_an_equals_sign_and_unknown_attributes_are_ignored() {
    let r = Request::parse(
        b"request=smtpd_access_policy\nccert_subject=CN=a=b\nfuture_attribute=1\nsender=x@y\n",
    )
    .unwrap();
    assert_eq!(r.sender, Some("x@y"));
}

#[test]
fn the_answer_ends_with_an_empty_line() {
    assert_eq!(&*Action::Dunno.answer(), b"action=DUNNO\n\n");
    assert_eq!(
        &*Action::Reject("5.7.1 no\nmore".into()).answer(),
        b"action=REJECT 5.7.1 no more\n\n"
    );
}
