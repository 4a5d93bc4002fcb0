//! `impresario`: the daemon and its command line.

mod cli;
mod doctor;
mod render;
mod service;
mod signals;

use engine::alloc_guard::GuardedAllocator;

// Imps allocate through the host (see the `imp` crate), so this guard sees
// every allocation on the engine thread, the imps' included.
#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

fn main() -> std::process::ExitCode {
    cli::main()
}
