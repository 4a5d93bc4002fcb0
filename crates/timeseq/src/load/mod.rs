//! Loading a script, in its three phases, each reporting errors the way the
//! reference does (`<location> : <message> [<code>]`):
//!
//! 1. **syntax**: the JSON text, with line and column, located at `/`
//!    ([`parse`]);
//! 2. **structure**: strict shapes and values, the `x-` exception, every
//!    error collected ([`parse`]), into the script's types ([`script`]);
//! 3. **processor build**: references, circular references, time scales and
//!    sequence lookups, into the flat program the engine runs ([`build`]).
//!
//! [`crate::Engine::load`] runs them in order.

pub(crate) mod build;
pub(crate) mod parse;
pub(crate) mod script;
