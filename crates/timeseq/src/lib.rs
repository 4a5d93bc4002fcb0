//! # timeseq
//!
//! A pure Rust implementation of the TimeSeq 1.2.0 script format (the not-things VCV Rack
//! module's JSON sequencing language), for impresario.
//!
//! See the crate README section below and `SPEC.md` in the shared spec directory.
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
