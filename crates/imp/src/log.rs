//! Forwards the imp's `tracing` events to the host.
//!
//! An imp library has its own copy of `tracing` and its statics, so the
//! host's subscriber does not see its events. `init` installs this
//! subscriber inside the imp; it formats each event's fields and hands the
//! text to the host's log callback, which adds the imp's name.

use crate::abi::BytesRef;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

struct Forward;

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let mut s = String::new();
            let _ = write!(s, "{value:?}");
            self.0.insert_str(0, &s);
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

/// Level numbers used across the boundary: 1 error .. 5 trace.
pub(crate) fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Sends one record to the host (drops it before `init`).
pub(crate) fn forward(level: u8, target: &str, message: &str) {
    if let Some(host) = crate::host::host() {
        // SAFETY: both slices outlive the call.
        unsafe {
            (host.log)(
                level,
                BytesRef::from_slice(target.as_bytes()),
                BytesRef::from_slice(message.as_bytes()),
            )
        };
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let meta = event.metadata();
        forward(level_number(meta.level()), meta.target(), &fields.0);
    }
}

/// Installs the forwarding subscriber and a panic hook that reports panics
/// through the host's log. Idempotent.
pub(crate) fn install() {
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward));
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        forward(
            1,
            "panic",
            &format!(
                "imp panicked: {}{location}",
                crate::error::panic_text(info.payload())
            ),
        );
    }));
}
