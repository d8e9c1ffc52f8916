use super::*;

fn ev(sender: &str, id: Option<&str>, ip: Option<&str>) -> Event {
    let ts = DateTime::from_timestamp(1_795_000_000, 123_456_789).unwrap();
    Event {
        result: Outcome::AuthFailed,
        client_ip: ip.map(|s| s.parse().unwrap()),
        host: Some("mx1".into()),
        id: id.map(str::to_owned),
        ..Event::accepted(ts, sender, Tls::V1_1)
    }
}

fn append(j: &mut Journal, events: &[Event], extra: &[(Vec<u8>, Vec<u8>)]) {
    let entry = Entry {
        events: events.to_vec(),
        extra: extra.to_vec(),
    };
    j.append([&entry]).unwrap();
}

#[test]
fn records_come_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let (mut j, entries) = Journal::open(&path, (0, 0)).unwrap();
    assert!(entries.is_empty());
    assert_eq!(j.generation(), 1);
    let a = [
        ev("a@x", Some("1"), Some("192.0.2.7")),
        ev("<b>\"@x", None, Some("2001:db8::1")),
    ];
    let b = [ev("c@y", None, None)];
    append(&mut j, &a, &[(b"Ck".to_vec(), b"v1".to_vec())]);
    append(&mut j, &b, &[]);
    drop(j);
    let (j, entries) = Journal::open(&path, (0, 0)).unwrap();
    assert_eq!(j.generation(), 1);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].events, a);
    assert_eq!(entries[0].extra, vec![(b"Ck".to_vec(), b"v1".to_vec())]);
    assert_eq!(entries[1].events, b);
    // Records the store already counted are not replayed.
    drop(j);
    let (j, entries) = Journal::open(&path, (1, 1)).unwrap();
    assert_eq!((entries.len(), j.generation()), (1, 1));
    assert_eq!(entries[0].events, b);
    drop(j);
    let (j, entries) = Journal::open(&path, (1, 2)).unwrap();
    assert!(entries.is_empty());
    assert_eq!(j.generation(), 2, "a counted generation starts the next");
}

#[test]
fn a_torn_or_damaged_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let (mut j, _) = Journal::open(&path, (0, 0)).unwrap();
    let first = [ev("a@x", None, None)];
    append(&mut j, &first, &[]);
    let good = std::fs::metadata(&path).unwrap().len();
    append(&mut j, &[ev("b@x", None, None)], &[]);
    drop(j);
    let full = std::fs::read(&path).unwrap();
    for cut in [good as usize + 3, full.len() - 1] {
        std::fs::write(&path, &full[..cut]).unwrap();
        let (_, entries) = Journal::open(&path, (0, 0)).unwrap();
        assert_eq!(entries.len(), 1, "cut at {cut}");
        assert_eq!(entries[0].events, first);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
    }
    let mut flipped = full.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0xff;
    std::fs::write(&path, &flipped).unwrap();
    let (mut j, entries) = Journal::open(&path, (0, 0)).unwrap();
    assert_eq!(entries.len(), 1);
    // Appending after a cut continues from the valid part.
    append(&mut j, &[ev("c@x", None, None)], &[]);
    drop(j);
    let (_, entries) = Journal::open(&path, (0, 0)).unwrap();
    let senders: Vec<_> = entries
        .iter()
        .map(|e| e.events[0].sender.as_str())
        .collect();
    assert_eq!(senders, ["a@x", "c@x"]);
}

#[test]
fn restart_empties_and_garbage_is_not_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let (mut j, _) = Journal::open(&path, (4, 3)).unwrap();
    assert_eq!(j.generation(), 5);
    append(&mut j, &[ev("a@x", None, None)], &[]);
    j.restart(6).unwrap();
    drop(j);
    let (j, entries) = Journal::open(&path, (5, 1)).unwrap();
    assert!(entries.is_empty());
    assert_eq!(j.generation(), 6);
    drop(j);
    std::fs::write(&path, b"not a journal at all, just text\n").unwrap();
    let (j, entries) = Journal::open(&path, (9, 0)).unwrap();
    assert!(entries.is_empty());
    assert_eq!(j.generation(), 10);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER);
}
