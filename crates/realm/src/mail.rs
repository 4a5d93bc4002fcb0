//! The realm's postbox: control messages between imps (see `imp::mail` for
//! the rules an imp author relies on).
//!
//! Imps post through the host table ([`crate::host`]): from the control
//! thread into [`Postbox`] (a short lock, never taken on the engine
//! thread), from the engine thread into a preallocated queue that a
//! courier thread empties into the postbox every [`COURIER_PERIOD`],
//! waking the supervisor. The supervisor delivers on its control thread
//! (`Realm::deliver_mail`): to a thawed imp at once, through its
//! `control`; to an imp that is not thawed into its waiting line, which is
//! delivered when it thaws.
//!
//! One realm per process: the postbox is process-wide because the host
//! functions have no context argument.

use crate::supervisor::Message;
use imp::abi::{MAIL_FULL, MAIL_INVALID, MAIL_OK, RT_MAIL_BYTES, RT_MAIL_NAME_BYTES};
use imp::mail::{POSTBOX_CAPACITY, RT_QUEUE_CAPACITY};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::UnsafeCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How often the courier moves messages from RT parts to the postbox.
pub const COURIER_PERIOD: Duration = Duration::from_millis(2);

/// The name that addresses the realm itself.
pub const REALM: &str = "realm";

/// One message on its way.
#[derive(Clone, Debug, PartialEq)]
pub struct Letter {
    /// The sending imp.
    pub from: String,
    /// The receiving imp (or [`REALM`]).
    pub to: String,
    /// The message as sent.
    pub message: Value,
    /// A state notification (replaced by a newer one from the same
    /// publisher while it waits).
    pub notify: bool,
}

/// The counts `impresario status` shows under `messages`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailCounts {
    /// Messages delivered to an imp's `control` (or handled by the realm).
    pub delivered: u64,
    /// Messages refused because a queue was full.
    pub dropped_full: u64,
    /// Messages dropped because their imp's waiting line was full.
    pub dropped_waiting: u64,
    /// Messages to a name that is not in the realm.
    pub undeliverable: u64,
    /// Messages the receiving imp answered with an error.
    pub refused: u64,
    /// Older state notifications replaced by newer ones while waiting.
    pub superseded: u64,
    /// Messages waiting for imps that are not thawed (now).
    pub waiting: u64,
}

/// The process-wide postbox.
#[derive(Default)]
pub(crate) struct Postbox {
    queue: VecDeque<Letter>,
    /// Publisher → its subscribers.
    subscriptions: BTreeMap<String, BTreeSet<String>>,
    /// Publisher → its newest state.
    retained: BTreeMap<String, Value>,
    pub(crate) counts: MailCounts,
}

fn postbox() -> MutexGuard<'static, Postbox> {
    static POSTBOX: OnceLock<Mutex<Postbox>> = OnceLock::new();
    POSTBOX
        .get_or_init(Default::default)
        .lock()
        // A panic while holding it cannot leave the queue half-written.
        .unwrap_or_else(|p| p.into_inner())
}

impl Postbox {
    fn post(&mut self, letter: Letter) -> u32 {
        if self.queue.len() >= POSTBOX_CAPACITY {
            self.counts.dropped_full += 1;
            return MAIL_FULL;
        }
        self.queue.push_back(letter);
        MAIL_OK
    }
}

/// Posts a message from the control side. Returns a `MAIL_*` code.
pub(crate) fn post(from: &str, to: &str, message: Value) -> u32 {
    let code = postbox().post(Letter {
        from: from.into(),
        to: to.into(),
        message,
        notify: false,
    });
    wake();
    code
}

/// Records or ends a subscription; a new one gets the retained state.
pub(crate) fn subscribe(subscriber: &str, publisher: &str, on: bool) -> u32 {
    let mut p = postbox();
    if on {
        let fresh = p
            .subscriptions
            .entry(publisher.into())
            .or_default()
            .insert(subscriber.into());
        if fresh {
            if let Some(state) = p.retained.get(publisher).cloned() {
                let code = p.post(notification(publisher, subscriber, state));
                drop(p);
                wake();
                return code;
            }
        }
    } else if let Some(s) = p.subscriptions.get_mut(publisher) {
        s.remove(subscriber);
    }
    MAIL_OK
}

fn notification(publisher: &str, subscriber: &str, state: Value) -> Letter {
    Letter {
        from: publisher.into(),
        to: subscriber.into(),
        message: json!({ "cmd": "notify", "from": publisher, "state": state }),
        notify: true,
    }
}

/// Publishes a state to every subscriber and keeps it for later ones.
pub(crate) fn publish(from: &str, state: Value) -> u32 {
    let mut p = postbox();
    let subscribers: Vec<String> = p
        .subscriptions
        .get(from)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    let mut code = MAIL_OK;
    for s in subscribers {
        let c = p.post(notification(from, &s, state.clone()));
        if c != MAIL_OK {
            code = c;
        }
    }
    p.retained.insert(from.into(), state);
    drop(p);
    wake();
    code
}

/// Forgets an imp that left the realm: its subscriptions both ways and
/// its retained state.
pub(crate) fn forget(imp: &str) {
    let mut p = postbox();
    p.subscriptions.remove(imp);
    for subs in p.subscriptions.values_mut() {
        subs.remove(imp);
    }
    p.retained.remove(imp);
}

/// Takes every letter queued so far (moving RT letters in first).
/// Control thread (public for the benchmark).
pub fn take() -> VecDeque<Letter> {
    WOKEN.store(false, Ordering::Release);
    drain_rt();
    std::mem::take(&mut postbox().queue)
}

/// Counts an outcome.
pub(crate) fn count(f: impl FnOnce(&mut MailCounts)) {
    f(&mut postbox().counts);
}

/// The counts, with `waiting` as given.
pub(crate) fn counts(waiting: u64) -> MailCounts {
    let mut c = postbox().counts.clone();
    c.waiting = waiting;
    c
}

// ---- the engine-thread queue ----------------------------------------------

/// A message from an RT part, fixed size so the queue is preallocated.
#[derive(Clone, Copy)]
struct RtLetter {
    from: [u8; RT_MAIL_NAME_BYTES],
    from_len: u8,
    to: [u8; RT_MAIL_NAME_BYTES],
    to_len: u8,
    body: [u8; RT_MAIL_BYTES],
    body_len: u16,
}

/// The producer side, behind a try-lock: normally only the engine thread
/// posts; a second thread posting at the same moment is refused (counted)
/// rather than made to wait.
struct RtQueue {
    busy: AtomicBool,
    producer: UnsafeCell<rtrb::Producer<RtLetter>>,
    consumer: Mutex<rtrb::Consumer<RtLetter>>,
    dropped: AtomicU64,
}

// SAFETY: `producer` is only touched by the thread that set `busy`.
unsafe impl Sync for RtQueue {}

static RT_QUEUE: OnceLock<RtQueue> = OnceLock::new();
static WAKER: Mutex<Option<mpsc::Sender<Message>>> = Mutex::new(None);
/// Set while a wake is on its way: one wake per batch, not one per letter.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// Reserves the engine-thread queue and starts the courier. Control
/// thread, before any imp runs; later calls only replace the waker
/// (public for the benchmark).
pub fn install(waker: Option<mpsc::Sender<Message>>) {
    *WAKER.lock().unwrap_or_else(|p| p.into_inner()) = waker;
    RT_QUEUE.get_or_init(|| {
        let (producer, consumer) = rtrb::RingBuffer::new(RT_QUEUE_CAPACITY);
        let _ = std::thread::Builder::new()
            .name("impresario-courier".into())
            .spawn(courier);
        RtQueue {
            busy: AtomicBool::new(false),
            producer: UnsafeCell::new(producer),
            consumer: Mutex::new(consumer),
            dropped: AtomicU64::new(0),
        }
    });
}

/// Posts from an RT part (what the host table's `rt_send` does): returns
/// a `MAIL_*` code. Engine thread: no allocation, no lock, no wait.
pub fn rt_post(from: &[u8], to: &[u8], body: &[u8]) -> u32 {
    if from.len() > RT_MAIL_NAME_BYTES
        || to.len() > RT_MAIL_NAME_BYTES
        || body.len() > RT_MAIL_BYTES
    {
        return MAIL_INVALID;
    }
    let Some(q) = RT_QUEUE.get() else {
        return MAIL_FULL;
    };
    if q.busy.swap(true, Ordering::Acquire) {
        q.dropped.fetch_add(1, Ordering::Relaxed);
        return MAIL_FULL;
    }
    // SAFETY: `busy` was false and is now ours: no other thread touches
    // the producer until we release it.
    let producer = unsafe { &mut *q.producer.get() };
    let code = match producer.write_chunk_uninit(1) {
        Ok(mut chunk) => {
            let (slot, _) = chunk.as_mut_slices();
            let letter = slot[0].as_mut_ptr();
            // SAFETY: `letter` points at one slot of the ring; every field
            // is written through raw pointers before the commit makes it
            // visible (no full `RtLetter` is built on the stack).
            unsafe {
                let from_buf = &raw mut (*letter).from;
                std::ptr::copy_nonoverlapping(from.as_ptr(), from_buf.cast::<u8>(), from.len());
                (*letter).from_len = from.len() as u8;
                let to_buf = &raw mut (*letter).to;
                std::ptr::copy_nonoverlapping(to.as_ptr(), to_buf.cast::<u8>(), to.len());
                (*letter).to_len = to.len() as u8;
                let body_buf = &raw mut (*letter).body;
                std::ptr::copy_nonoverlapping(body.as_ptr(), body_buf.cast::<u8>(), body.len());
                (*letter).body_len = body.len() as u16;
                chunk.commit_all();
            }
            MAIL_OK
        }
        Err(_) => {
            q.dropped.fetch_add(1, Ordering::Relaxed);
            MAIL_FULL
        }
    };
    q.busy.store(false, Ordering::Release);
    code
}

/// Moves RT letters into the postbox; true when there were any.
fn drain_rt() -> bool {
    let Some(q) = RT_QUEUE.get() else {
        return false;
    };
    let dropped = q.dropped.swap(0, Ordering::Relaxed);
    let mut moved = false;
    let mut consumer = q.consumer.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = postbox();
    p.counts.dropped_full += dropped;
    while let Ok(l) = consumer.pop() {
        moved = true;
        let from = String::from_utf8_lossy(&l.from[..l.from_len as usize]).into_owned();
        let to = String::from_utf8_lossy(&l.to[..l.to_len as usize]).into_owned();
        match serde_json::from_slice::<Value>(&l.body[..l.body_len as usize]) {
            Ok(message) => {
                p.post(Letter {
                    from,
                    to,
                    message,
                    notify: false,
                });
            }
            Err(e) => {
                p.counts.refused += 1;
                tracing::warn!(
                    "imp {from}: a message to {to} from its RT part is not JSON ({e}); dropped"
                );
            }
        }
    }
    moved
}

fn wake() {
    if WOKEN.swap(true, Ordering::AcqRel) {
        return;
    }
    if let Some(tx) = WAKER.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        let _ = tx.send(Message::Mail);
    }
}

/// Wakes the supervisor again (it left messages for its next turn).
pub(crate) fn wake_later() {
    WOKEN.store(false, Ordering::Release);
    wake();
}

/// The courier: empties the engine-thread queue every [`COURIER_PERIOD`]
/// and wakes the supervisor when it moved something.
fn courier() {
    loop {
        std::thread::sleep(COURIER_PERIOD);
        if drain_rt() {
            wake();
        }
    }
}

/// Whether a message is already waiting in the postbox.
pub(crate) fn pending() -> bool {
    !postbox().queue.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The postbox is process-wide: one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_new_subscriber_gets_the_newest_state_and_later_ones() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let _ = take();
        publish("pub-a", json!({ "n": 1 }));
        publish("pub-a", json!({ "n": 2 }));
        assert_eq!(subscribe("sub-a", "pub-a", true), MAIL_OK);
        publish("pub-a", json!({ "n": 3 }));
        let got: Vec<Value> = take()
            .into_iter()
            .filter(|l| l.to == "sub-a")
            .map(|l| l.message["state"]["n"].clone())
            .collect();
        assert_eq!(got, vec![json!(2), json!(3)]);
        forget("pub-a");
        publish("pub-a", json!({ "n": 4 }));
        assert!(take().iter().all(|l| l.to != "sub-a"));
    }

    #[test]
    fn rt_letters_arrive_in_order_and_oversized_ones_are_refused() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        install(None);
        let _ = take();
        for i in 0..10 {
            let body = format!("{{\"cmd\":\"n\",\"i\":{i}}}");
            assert_eq!(
                rt_post(b"rt-sender", b"rt-target", body.as_bytes()),
                MAIL_OK
            );
        }
        assert_eq!(
            rt_post(b"rt-sender", b"rt-target", &[b' '; RT_MAIL_BYTES + 1]),
            MAIL_INVALID
        );
        let got: Vec<i64> = take()
            .into_iter()
            .filter(|l| l.to == "rt-target")
            .map(|l| l.message["i"].as_i64().unwrap())
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
