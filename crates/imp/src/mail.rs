//! Messages between imps.
//!
//! An imp talks to another imp with control messages (JSON objects tagged
//! `cmd`, the same envelope the CLI's `impresario control` uses), addressed
//! by the other imp's name in `realm.toml`. The realm carries them on its
//! control thread:
//!
//! - **Ordered**: one queue for the whole realm, so two messages reach
//!   their imp in the order they were sent, whoever sent them.
//! - **Bounded**: the realm's queue holds [`POSTBOX_CAPACITY`] messages and
//!   the engine-thread queue [`RT_QUEUE_CAPACITY`]; a message that does not
//!   fit is refused ([`MailError::Full`]) and counted, never blocks.
//! - **Frozen or reloading receivers**: a message to an imp that is not
//!   thawed (its device is away, it is being respawned, it failed) waits
//!   for it, at most [`WAITING_CAPACITY`] per imp, and is delivered, in
//!   order, when it thaws; messages beyond that are dropped and counted.
//!   A state notification ([`Messenger::publish`]) waiting for a frozen
//!   subscriber is replaced by a newer one from the same publisher: a
//!   subscriber that thaws gets the newest state, not the history.
//! - A message to a name that is not in the realm is dropped and counted.
//!
//! `impresario status` shows the counts (`messages`).
//!
//! The delivered message is what the sender wrote; it arrives through the
//! receiver's [`Imp::control`](crate::Imp::control) (its reply is logged
//! when it is an error, and otherwise discarded). State published by an
//! imp reaches each subscriber as `{"cmd": "notify", "from": <publisher>,
//! "state": <state>}`.
//!
//! The name `realm` is the realm itself: `{"cmd": "tempo", "bpm": 96}`
//! sets the engine's tempo.

use crate::abi::{BytesRef, MAIL_FULL, MAIL_OK, RT_MAIL_BYTES, RT_MAIL_NAME_BYTES};
use serde_json::Value;

/// Messages the realm's queue holds before it refuses more.
pub const POSTBOX_CAPACITY: usize = 4096;
/// Messages the engine-thread queue holds before it refuses more.
pub const RT_QUEUE_CAPACITY: usize = 256;
/// Messages held for one imp that is not thawed.
pub const WAITING_CAPACITY: usize = 256;

/// Why a message was not sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The queue is full (the message is counted as dropped).
    #[error("the realm's message queue is full; the message was dropped")]
    Full,
    /// The names or the message are malformed or too long.
    #[error("the message or a name is malformed or too long (names up to {RT_MAIL_NAME_BYTES} bytes, RT messages up to {RT_MAIL_BYTES} bytes of JSON)")]
    Invalid,
    /// No host (a unit test calling the imp directly).
    #[error("no realm to carry messages (the imp runs outside impresario)")]
    NoRealm,
}

fn code_to_result(code: u32) -> Result<(), MailError> {
    match code {
        MAIL_OK => Ok(()),
        MAIL_FULL => Err(MailError::Full),
        _ => Err(MailError::Invalid),
    }
}

/// An imp's handle for messages: given by [`CreateContext::messenger`](crate::CreateContext::messenger).
/// Used by the control part (any of its methods, on the control thread).
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Messenger {
    name: String,
}

impl Messenger {
    #[doc(hidden)]
    pub fn new(name: String) -> Messenger {
        Messenger { name }
    }

    /// The imp's own name (the sender of its messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a control message to imp `to` (see the [module docs](self) for
    /// the delivery rules). Returns once it is queued, not delivered.
    /// Control thread; allocates.
    pub fn send(&self, to: &str, message: &Value) -> Result<(), MailError> {
        let bytes = serde_json::to_vec(message).map_err(|_| MailError::Invalid)?;
        let host = crate::host::host().ok_or(MailError::NoRealm)?;
        // SAFETY: a function of the host's table (lives as long as the
        // process); the three byte slices are valid for the call.
        code_to_result(unsafe {
            (host.send)(
                BytesRef::from_slice(self.name.as_bytes()),
                BytesRef::from_slice(to.as_bytes()),
                BytesRef::from_slice(&bytes),
            )
        })
    }

    /// Subscribes to the state imp `publisher` publishes: every
    /// [`Messenger::publish`] of it arrives as `{"cmd": "notify", "from":
    /// publisher, "state": ...}`, starting with its newest state if it
    /// published one already. Subscriptions last until
    /// [`Messenger::unsubscribe`] or until this imp leaves the realm
    /// (across freezes and respawns). Control thread.
    pub fn subscribe(&self, publisher: &str) -> Result<(), MailError> {
        self.subscription(publisher, 1)
    }

    /// Ends a subscription. Control thread.
    pub fn unsubscribe(&self, publisher: &str) -> Result<(), MailError> {
        self.subscription(publisher, 0)
    }

    fn subscription(&self, publisher: &str, on: u8) -> Result<(), MailError> {
        let host = crate::host::host().ok_or(MailError::NoRealm)?;
        // SAFETY: as in `send`.
        code_to_result(unsafe {
            (host.subscribe)(
                BytesRef::from_slice(self.name.as_bytes()),
                BytesRef::from_slice(publisher.as_bytes()),
                on,
            )
        })
    }

    /// Publishes this imp's state to its subscribers (the realm keeps the
    /// newest for subscribers that come later). Control thread; allocates.
    pub fn publish(&self, state: &Value) -> Result<(), MailError> {
        let bytes = serde_json::to_vec(state).map_err(|_| MailError::Invalid)?;
        let host = crate::host::host().ok_or(MailError::NoRealm)?;
        // SAFETY: as in `send`.
        code_to_result(unsafe {
            (host.publish)(
                BytesRef::from_slice(self.name.as_bytes()),
                BytesRef::from_slice(&bytes),
            )
        })
    }

    /// A sender for the RT part: hand it to the RT part in `thaw`.
    /// Fails when the imp's name is longer than [`RT_MAIL_NAME_BYTES`].
    pub fn rt_sender(&self) -> Result<RtSender, MailError> {
        let bytes = self.name.as_bytes();
        if bytes.len() > RT_MAIL_NAME_BYTES {
            return Err(MailError::Invalid);
        }
        let mut from = [0u8; RT_MAIL_NAME_BYTES];
        from[..bytes.len()].copy_from_slice(bytes);
        Ok(RtSender {
            from,
            from_len: bytes.len(),
        })
    }
}

/// Sends control messages from an RT part, on the engine thread, without
/// allocating: the message is copied into a queue the realm reserved up
/// front and delivered by the realm's control thread within a few
/// milliseconds, in order with everything else. A full queue refuses the
/// message (and counts it); try again on a later block.
#[derive(Clone, Copy, Debug)]
pub struct RtSender {
    from: [u8; RT_MAIL_NAME_BYTES],
    from_len: usize,
}

impl RtSender {
    /// Sends `message` (JSON bytes, at most [`RT_MAIL_BYTES`]) to imp `to`.
    /// Engine thread; no allocation.
    pub fn try_send(&self, to: &str, message: &[u8]) -> Result<(), MailError> {
        let host = crate::host::host().ok_or(MailError::NoRealm)?;
        // SAFETY: as in `Messenger::send`; the host's `rt_send` is safe on
        // the engine thread.
        code_to_result(unsafe {
            (host.rt_send)(
                BytesRef::from_slice(&self.from[..self.from_len]),
                BytesRef::from_slice(to.as_bytes()),
                BytesRef::from_slice(message),
            )
        })
    }

    /// Formats the message into a stack buffer (no allocation for numbers
    /// and strings) and sends it: `sender.try_send_fmt("enchanter",
    /// format_args!(r#"{{"cmd":"gesture","key":{}}}"#, key))`. Engine thread.
    pub fn try_send_fmt(
        &self,
        to: &str,
        message: core::fmt::Arguments<'_>,
    ) -> Result<(), MailError> {
        let mut buf = StackText {
            bytes: [0; RT_MAIL_BYTES],
            len: 0,
        };
        core::fmt::write(&mut buf, message).map_err(|_| MailError::Invalid)?;
        self.try_send(to, &buf.bytes[..buf.len])
    }
}

/// A fixed buffer that `core::fmt` writes into.
struct StackText {
    bytes: [u8; RT_MAIL_BYTES],
    len: usize,
}

impl core::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(core::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Messages an RT part keeps until [`RtSender`] takes them: a fixed ring
/// of `N`, so queueing never allocates. A controller puts its gestures here
/// and sends from the front while the realm's queue has room, so a full
/// queue delays gestures, in order, instead of losing them. Engine thread.
#[derive(Clone, Debug)]
pub struct RtOutbox<T: Copy, const N: usize> {
    slots: [Option<T>; N],
    head: usize,
    len: usize,
}

impl<T: Copy, const N: usize> Default for RtOutbox<T, N> {
    fn default() -> Self {
        RtOutbox {
            slots: [None; N],
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy, const N: usize> RtOutbox<T, N> {
    /// Queues `item` last; false (nothing queued) when the outbox is full.
    pub fn push(&mut self, item: T) -> bool {
        if self.len == N {
            return false;
        }
        self.slots[(self.head + self.len) % N] = Some(item);
        self.len += 1;
        true
    }

    /// Queues `item` last, dropping the oldest when the outbox is full;
    /// true when one was dropped.
    pub fn push_dropping_oldest(&mut self, item: T) -> bool {
        let full = self.len == N;
        if full {
            self.pop();
        }
        self.push(item);
        full
    }

    /// The oldest item.
    pub fn front(&self) -> Option<T> {
        if self.len == 0 {
            None
        } else {
            self.slots[self.head]
        }
    }

    /// The newest item, to change in place (e.g. to add up two turns of a knob).
    pub fn back_mut(&mut self) -> Option<&mut T> {
        if self.len == 0 {
            return None;
        }
        self.slots[(self.head + self.len - 1) % N].as_mut()
    }

    /// Removes the oldest item.
    pub fn pop(&mut self) {
        if self.len > 0 {
            self.slots[self.head] = None;
            self.head = (self.head + 1) % N;
            self.len -= 1;
        }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The waiting items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).filter_map(|i| self.slots[(self.head + i) % N])
    }
}

#[cfg(test)]
mod tests {
    use super::RtOutbox;

    #[test]
    fn the_outbox_keeps_order_refuses_or_drops_the_oldest_when_full() {
        let mut o: RtOutbox<u8, 3> = RtOutbox::default();
        assert!(o.push(1) && o.push(2) && o.push(3));
        assert!(!o.push(4), "full: refused");
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(o.push_dropping_oldest(4), "full: the oldest goes");
        assert_eq!(o.front(), Some(2));
        *o.back_mut().unwrap() += 10;
        o.pop();
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![3, 14]);
        assert!(!o.push_dropping_oldest(5));
        assert_eq!(o.len(), 3);
        o.pop();
        o.pop();
        o.pop();
        assert!(o.is_empty() && o.front().is_none() && o.back_mut().is_none());
    }
}
