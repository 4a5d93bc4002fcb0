//! The error type imps return, shaped like `std::io::Error`: a kind the
//! host acts on plus a message for the musician.

use std::fmt;

/// What kind of failure an imp reports. The host acts on the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The imp cannot run yet (its device is absent). From `thaw` this keeps
    /// the imp frozen; the realm retries every thaw-retry period.
    NotReady,
    /// The configuration or data given to the imp is invalid.
    InvalidInput,
    /// The imp does not support this request (e.g. an unknown control message).
    Unsupported,
    /// Anything else.
    Other,
}

/// An error returned by an imp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImpError {
    kind: ErrorKind,
    message: String,
}

impl ImpError {
    /// An error of `kind` with a message that says what and what to do.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ImpError {
        ImpError {
            kind,
            message: message.into(),
        }
    }

    /// The imp's device or resource is absent; the realm will retry.
    pub fn not_ready(message: impl Into<String>) -> ImpError {
        Self::new(ErrorKind::NotReady, message)
    }

    /// Invalid configuration or data.
    pub fn invalid(message: impl Into<String>) -> ImpError {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ImpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImpError {}

impl From<serde_json::Error> for ImpError {
    fn from(e: serde_json::Error) -> Self {
        ImpError::invalid(e.to_string())
    }
}

/// Text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}
