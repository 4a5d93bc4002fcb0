//! A hook into the supervisor's loop for whoever runs the realm (the
//! binary's service integration: the systemd watchdog and `STOPPING=1`).

/// What the supervisor's loop reports to its observer. Control thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopEvent {
    /// A reconcile tick ran; `engine_cycles` is the engine's cycle count
    /// now (it advances while the clock runs).
    Tick {
        /// Engine cycles run so far.
        engine_cycles: u64,
    },
    /// The loop ended and the stop begins (imps are frozen next).
    Stopping,
}

/// The observer: called on the control thread, after each tick and once
/// when the stop begins. It must return quickly (it runs inside the loop).
pub type LoopObserver = Box<dyn FnMut(LoopEvent) + Send>;
