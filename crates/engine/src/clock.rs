//! Clocks: the internal block clock that drives an engine from its own
//! thread, the hook a backend runs around its cycles, and real-time priority.

use crate::{alloc_guard, EngineConfig, EngineCore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a backend does around each cycle of the internal clock, on the
/// engine thread: deliver input before, send output after. Must not
/// allocate, lock or block.
pub trait ClockDriver: Send + 'static {
    /// Before the cycle: deliver input with [`EngineCore::push_input`].
    fn before_cycle(&mut self, core: &mut EngineCore, frames: u32);
    /// After the cycle: send [`EngineCore::emitted`] events out.
    fn after_cycle(&mut self, core: &mut EngineCore, frames: u32);
    /// The clock stops: end every note (the engine's and the ports' own
    /// ledgers) and send those note-offs out, before the ports go. The
    /// default ends the engine's notes and sends them like a cycle's output.
    fn stop(&mut self, core: &mut EngineCore, frames: u32) {
        core.all_notes_off();
        self.after_cycle(core, frames);
    }
}

/// No ports: the clock only runs cycles.
impl ClockDriver for () {
    fn before_cycle(&mut self, _: &mut EngineCore, _: u32) {}
    fn after_cycle(&mut self, _: &mut EngineCore, _: u32) {}
}

/// Drives an [`EngineCore`] from its own thread at the block rate.
pub struct InternalClock {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<EngineCore>>,
}

impl InternalClock {
    /// Starts the clock thread. Asks for real-time priority (SCHED_FIFO);
    /// when the system refuses, says so in the log and runs anyway.
    pub fn start(
        mut core: EngineCore,
        config: EngineConfig,
        mut driver: impl ClockDriver,
    ) -> std::io::Result<InternalClock> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let block = Duration::from_secs_f64(config.block_size as f64 / config.sample_rate as f64);
        let thread = std::thread::Builder::new()
            .name("impresario-engine".into())
            .spawn(move || {
                if let Err(e) = crate::realtime::promote_to_realtime(crate::realtime::ENGINE_PRIORITY) {
                    tracing::warn!(
                        "real-time priority refused ({e}); the engine runs at normal priority and may \
                         glitch under load. Fix: {}",
                        crate::realtime::LIMITS_FIX
                    );
                }
                let mut deadline = Instant::now();
                while !stop2.load(std::sync::atomic::Ordering::Acquire) {
                    alloc_guard::rt_section(|| driver.before_cycle(&mut core, config.block_size));
                    core.cycle(config.block_size);
                    alloc_guard::rt_section(|| driver.after_cycle(&mut core, config.block_size));
                    deadline += block;
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    } else if now - deadline > block * 4 {
                        // Far behind (suspend, debugger): resynchronise
                        // instead of racing through a backlog.
                        core.stats.note_overrun();
                        deadline = now;
                    }
                }
                // The last notes the shutdown released go out too.
                alloc_guard::rt_section(|| driver.stop(&mut core, config.block_size));
                core
            })?;
        Ok(InternalClock {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the clock after the current cycle, ends all notes, and returns the core.
    pub fn stop(mut self) -> Option<EngineCore> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for InternalClock {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
