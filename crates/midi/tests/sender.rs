//! The output sender thread over a recording sink: due-time order, never
//! early, FIFO among equal times, flush on drop, full ring, failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use midi::alsa::{spawn_sender, SenderOptions, TrySendError};
use midi::ShortMessage;

type Log = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

fn recording() -> (
    Log,
    impl FnMut(&[u8]) -> Result<(), String> + Send + 'static,
) {
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    (log, move |b: &[u8]| {
        l.lock().unwrap().push((Instant::now(), b.to_vec()));
        Ok(())
    })
}

fn wait_for(log: &Log, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} sent",
            log.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn messages_leave_in_due_order_never_early() {
    let (log, sink) = recording();
    let (thread, mut tx) = spawn_sender("test", sink, SenderOptions::default()).unwrap();
    let t0 = Instant::now() + Duration::from_millis(20);
    let dues = [30u64, 10, 20, 10, 0];
    for (i, ms) in dues.iter().enumerate() {
        tx.try_send(
            t0 + Duration::from_millis(*ms),
            ShortMessage::note_on(0, i as u8, 1),
        )
        .unwrap();
    }
    wait_for(&log, dues.len());
    let log = log.lock().unwrap().clone();
    // Due order; the two at +10 ms in the order they were pushed (keys 1 then 3).
    let keys: Vec<u8> = log.iter().map(|(_, b)| b[1]).collect();
    assert_eq!(keys, vec![4, 1, 3, 2, 0]);
    for (at, bytes) in &log {
        let due = t0 + Duration::from_millis(dues[bytes[1] as usize]);
        assert!(*at >= due, "key {} sent {:?} early", bytes[1], due - *at);
    }
    assert_eq!(thread.stats().sent, 5);
    assert_eq!(thread.stats().failed, 0);
}

#[test]
fn past_due_messages_go_out_at_once() {
    let (log, sink) = recording();
    let (_thread, mut tx) = spawn_sender("test", sink, SenderOptions::default()).unwrap();
    let past = Instant::now() - Duration::from_secs(1);
    tx.try_send(past, ShortMessage::control_change(1, 7, 100))
        .unwrap();
    wait_for(&log, 1);
    assert_eq!(log.lock().unwrap()[0].1, vec![0xB1, 7, 100]);
    // Raw bytes are checked before they are queued.
    assert!(matches!(
        tx.try_send_bytes(past, &[0x90, 60]),
        Err(TrySendError::Invalid(
            midi::MessageError::WrongLength { .. }
        ))
    ));
    assert!(matches!(
        tx.try_send_bytes(past, &[0xF0, 1, 0xF7]),
        Err(TrySendError::Invalid(midi::MessageError::InvalidStatus(
            0xF0
        )))
    ));
    tx.try_send_bytes(past, &[0xC1, 5]).unwrap();
    wait_for(&log, 2);
    assert_eq!(log.lock().unwrap()[1].1, vec![0xC1, 5]);
}

#[test]
fn drop_sends_everything_still_queued() {
    let (log, sink) = recording();
    let (thread, mut tx) = spawn_sender("test", sink, SenderOptions::default()).unwrap();
    let later = Instant::now() + Duration::from_secs(3600);
    tx.try_send(later, ShortMessage::note_off(0, 60, 0))
        .unwrap();
    tx.try_send(
        later - Duration::from_secs(1),
        ShortMessage::note_off(0, 61, 0),
    )
    .unwrap();
    let start = Instant::now();
    drop(thread);
    assert!(start.elapsed() < Duration::from_secs(5));
    let keys: Vec<u8> = log.lock().unwrap().iter().map(|(_, b)| b[1]).collect();
    assert_eq!(keys, vec![61, 60]);
    // The thread is gone: the engine side is told, and gets its message back.
    let m = ShortMessage::note_on(0, 1, 1);
    assert!(matches!(tx.try_send(later, m), Err(TrySendError::Closed(t)) if t.message == m));
}

#[test]
fn full_ring_hands_the_message_back() {
    // The sink blocks until released, so the thread cannot drain anything.
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = Arc::clone(&gate);
    let sink = move |_: &[u8]| {
        drop(g.lock().unwrap());
        Ok(())
    };
    let opts = SenderOptions {
        ring_capacity: 4,
        max_pending: 1,
        poll_interval: Duration::from_millis(1),
        ..SenderOptions::default()
    };
    let (thread, mut tx) = spawn_sender("test", sink, opts).unwrap();
    let now = Instant::now();
    let mut full = 0;
    for k in 0..16u8 {
        match tx.try_send(now, ShortMessage::note_on(0, k, 1)) {
            Ok(()) => {}
            Err(TrySendError::Full(t)) => {
                assert_eq!(t.message.as_bytes()[1], k);
                full += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    // At most ring (4) + pending (1) + the one in the sink were taken.
    assert!(full >= 10, "{full}");
    drop(held);
    drop(thread);
}

#[test]
fn refused_messages_are_counted_and_raw_bytes_are_sent() {
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    let sink = move |b: &[u8]| {
        l.lock().unwrap().push((Instant::now(), b.to_vec()));
        if b[0] == 0x90 {
            Err("port refused".to_string())
        } else {
            Ok(())
        }
    };
    let (thread, mut tx) = spawn_sender("test", sink, SenderOptions::default()).unwrap();
    tx.try_send(Instant::now(), ShortMessage::note_on(0, 60, 1))
        .unwrap();
    assert!(thread.send_raw_now(vec![0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7]));
    wait_for(&log, 2);
    let stats = thread.stats();
    assert_eq!((stats.sent, stats.failed), (1, 1));
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|(_, b)| b == &[0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7]));
}

#[test]
fn a_timed_sysex_leaves_whole_in_order_with_short_messages_never_early() {
    let (log, sink) = recording();
    let (thread, mut tx) = spawn_sender("test", sink, SenderOptions::default()).unwrap();
    let t0 = Instant::now() + Duration::from_millis(20);
    let mut sysex = vec![0xF0];
    sysex.extend((0..1022).map(|i| (i % 128) as u8));
    sysex.push(0xF7);
    tx.try_send(t0, ShortMessage::note_on(0, 60, 100)).unwrap();
    tx.try_send_sysex(t0, &sysex).unwrap();
    tx.try_send(t0, ShortMessage::note_off(0, 60, 0)).unwrap();
    tx.try_send_sysex(t0 + Duration::from_millis(5), &[0xF0, 1, 0xF7])
        .unwrap();
    wait_for(&log, 4);
    let log = log.lock().unwrap().clone();
    let sent: Vec<Vec<u8>> = log.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(
        sent,
        vec![
            vec![0x90, 60, 100],
            sysex,
            vec![0x80, 60, 0],
            vec![0xF0, 1, 0xF7]
        ]
    );
    assert!(log[1].0 >= t0, "the SysEx left early");
    assert!(log[3].0 >= t0 + Duration::from_millis(5));
    assert_eq!(thread.stats().sent, 4);
}

#[test]
fn a_sysex_the_byte_ring_cannot_hold_is_refused_whole() {
    let (log, sink) = recording();
    let opts = SenderOptions {
        sysex_ring_bytes: 16,
        ..SenderOptions::default()
    };
    let (_thread, mut tx) = spawn_sender("test", sink, opts).unwrap();
    let later = Instant::now() + Duration::from_secs(3600);
    let mut big = vec![0xF0; 17];
    big[16] = 0xF7;
    assert!(matches!(
        tx.try_send_sysex(later, &big),
        Err(TrySendError::SysexFull { len: 17 })
    ));
    assert!(matches!(
        tx.try_send_sysex(later, &[0xF0, 1, 2]),
        Err(TrySendError::NotSysex)
    ));
    // The ring is untouched: a message that fits still goes.
    let mut fits = vec![0u8; 16];
    fits[0] = 0xF0;
    fits[15] = 0xF7;
    tx.try_send_sysex(Instant::now(), &fits).unwrap();
    wait_for(&log, 1);
    assert_eq!(log.lock().unwrap()[0].1, fits);
}
