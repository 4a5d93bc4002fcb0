//! Typed load errors.

use std::fmt;

/// One validation problem found while loading a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON-pointer-like location, e.g. `/timelines/0/lanes/1`. The root is `/`.
    pub location: String,
    /// Human readable message (wording is ours, not the reference's).
    pub message: String,
    /// The reference's numeric error code; `None` for JSON syntax errors.
    pub code: Option<u32>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "{} : {} [{}]", self.location, self.message, c),
            None => write!(f, "{} : {}", self.location, self.message),
        }
    }
}

/// Why a script could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The text is not valid JSON (phase 1).
    #[error("JSON syntax error: {0}")]
    Syntax(ValidationError),
    /// The JSON does not follow the script structure (phase 2).
    #[error("{} structural error(s)", .0.len())]
    Structure(Vec<ValidationError>),
    /// The script could not be compiled into a processor (phase 3).
    #[error("{} processor build error(s)", .0.len())]
    Build(Vec<ValidationError>),
}

impl LoadError {
    /// All errors, in the order they were found.
    pub fn errors(&self) -> Vec<ValidationError> {
        match self {
            LoadError::Syntax(e) => vec![e.clone()],
            LoadError::Structure(v) | LoadError::Build(v) => v.clone(),
        }
    }
}
