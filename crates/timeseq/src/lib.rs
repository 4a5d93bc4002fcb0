#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod build;
pub mod cli;
mod engine;
mod error;
pub mod fmt;
mod parse;
mod program;

pub use engine::{validate, AssertFailure, Engine, Status, MAX_SEQ_DEPTH, NO_LABEL};
pub use error::{LoadError, ValidationError};
