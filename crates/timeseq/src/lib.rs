#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod cli;
mod engine;
mod error;
pub mod fmt;
mod load;
mod program;

// The load phases keep their short paths inside the crate.
use load::{build, parse};

pub use engine::{validate, AssertFailure, Engine, Status, MAX_SEQ_DEPTH, NO_LABEL};
pub use error::{LoadError, ValidationError};
