//! # letters: an imp that writes and reads numbered messages
//!
//! For the tests of messages between imps. Each poll it sends `per_poll`
//! messages `{"cmd": "letter", "via": "control", "n": k}` to the imp `to`,
//! and its RT part sends `{"cmd": "letter", "via": "rt", "n": k}` every
//! `rt_every` blocks through the engine-thread queue. The numbers carry
//! across respawns (frozen state, and the RT part's transient state), so a
//! receiver that sees a number twice, or out of order, shows a bug in the
//! realm's delivery; a gap is a message dropped, which the realm must have
//! counted. It can also publish its counter and subscribe to another imp.
//!
//! Its "device" is present only while `device_file` exists (when set), so a
//! test can freeze it and thaw it again. Nothing in a musician's realm
//! needs it.

use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, Messenger, RtEvent, RtPart, RtSender,
    TRANSIENT_BYTES,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to send and to whom.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The imp the letters go to.
    pub to: Option<String>,
    /// Letters sent by the control part each poll.
    pub per_poll: u32,
    /// Blocks between two letters of the RT part (0: none).
    pub rt_every: u32,
    /// Publish `{"n": <letters sent>}` each poll.
    pub publish: bool,
    /// Subscribe to this imp's state.
    pub subscribe: Option<String>,
    /// The "device" is present only while this file exists.
    pub device_file: Option<PathBuf>,
}

/// What one sender's letters (by route) looked like on arrival.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Track {
    /// Letters received.
    pub count: u64,
    /// The highest number seen (-1: none).
    pub last: i64,
    /// Letters whose number was seen before.
    pub duplicates: u64,
    /// Numbers skipped (dropped on the way).
    pub missing: u64,
}

/// Carried across respawns.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    /// The next control-part letter number.
    next: u64,
    /// Received letters by `<sender>/<route>`.
    received: BTreeMap<String, Track>,
    /// State notifications received, and the newest.
    notifications: u64,
    newest_state: Value,
}

/// The control part.
pub struct Letters {
    config: Config,
    messenger: Messenger,
    saved: Saved,
}

/// The RT part: a block counter and the next RT letter number.
pub struct LettersRt {
    sender: RtSender,
    name: String,
    to: String,
    every: u32,
    blocks: u32,
    next: u64,
}

impl Imp for Letters {
    type Config = Config;
    type Frozen = Saved;
    type Rt = LettersRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Saved>,
    ) -> Result<Self, ImpError> {
        Ok(Letters {
            config,
            messenger: ctx.messenger().clone(),
            saved: frozen.unwrap_or_default(),
        })
    }

    fn thaw(&mut self) -> Result<Option<LettersRt>, ImpError> {
        if let Some(f) = &self.config.device_file {
            if !f.exists() {
                return Err(ImpError::not_ready(format!("{} is absent", f.display())));
            }
        }
        if let Some(p) = &self.config.subscribe {
            self.messenger
                .subscribe(p)
                .map_err(|e| ImpError::invalid(e.to_string()))?;
        }
        let rt = match &self.config.to {
            Some(to) if self.config.rt_every > 0 => Some(LettersRt {
                sender: self
                    .messenger
                    .rt_sender()
                    .map_err(|e| ImpError::invalid(e.to_string()))?,
                to: to.clone(),
                name: self.messenger.name().to_string(),
                every: self.config.rt_every,
                blocks: 0,
                next: 0,
            }),
            _ => None,
        };
        Ok(rt)
    }

    fn freeze(&mut self) -> Saved {
        // A plain freeze (device away) thaws this same instance again.
        self.saved.clone()
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        if let Some(f) = &self.config.device_file {
            if !f.exists() {
                return Err(ImpError::not_ready(format!("{} went away", f.display())));
            }
        }
        if let Some(to) = &self.config.to {
            for _ in 0..self.config.per_poll {
                let n = self.saved.next;
                match self.messenger.send(
                    to,
                    &json!({
                        "cmd": "letter",
                        "from": self.messenger.name(),
                        "via": "control",
                        "n": n
                    }),
                ) {
                    // A refused letter is dropped and counted by the realm:
                    // the receiver sees a gap, as it should.
                    Ok(()) | Err(imp::MailError::Full) => self.saved.next += 1,
                    Err(e) => return Err(ImpError::invalid(e.to_string())),
                }
            }
        }
        if self.config.publish {
            let _ = self.messenger.publish(&json!({ "n": self.saved.next }));
        }
        Ok(json!({
            "sent": self.saved.next,
            "received": self.saved.received,
            "notifications": self.saved.notifications,
            "newest_state": self.saved.newest_state,
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        match message.get("cmd").and_then(Value::as_str) {
            Some("letter") => {
                let from = message["from"].as_str().unwrap_or("?");
                let via = message["via"].as_str().unwrap_or("?");
                let n = message["n"]
                    .as_i64()
                    .ok_or_else(|| ImpError::invalid("a letter needs a number `n`"))?;
                let t = self
                    .saved
                    .received
                    .entry(format!("{from}/{via}"))
                    .or_insert(Track {
                        last: -1,
                        ..Track::default()
                    });
                t.count += 1;
                if n > t.last {
                    t.missing += (n - t.last - 1) as u64;
                    t.last = n;
                } else {
                    // Seen before, or skipped and now late: both are bugs
                    // (the realm delivers in order, once).
                    t.duplicates += 1;
                }
                Ok(json!({ "ok": true }))
            }
            Some("notify") => {
                self.saved.notifications += 1;
                self.saved.newest_state = message["state"].clone();
                Ok(json!({ "ok": true }))
            }
            _ => Err(ImpError::invalid(format!(
                "letters takes {{\"cmd\": \"letter\"|\"notify\"}}, not {message}"
            ))),
        }
    }
}

impl RtPart for LettersRt {
    fn process(&mut self, _: &BlockContext, _: &[RtEvent], _: &mut EventWriter<'_>) {
        self.blocks += 1;
        if self.blocks < self.every {
            return;
        }
        let sent = self.sender.try_send_fmt(
            &self.to,
            format_args!(
                r#"{{"cmd":"letter","from":"{}","via":"rt","n":{}}}"#,
                self.name, self.next
            ),
        );
        // Full: try the same number again on the next block.
        if sent.is_ok() {
            self.blocks = 0;
            self.next += 1;
        }
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        buf[..8].copy_from_slice(&self.next.to_le_bytes());
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        let mut n = [0u8; 8];
        n.copy_from_slice(&buf[..8]);
        self.next = u64::from_le_bytes(n);
        true
    }
}

imp::export!(Letters);
