//! Fuzzes the loader (all three phases) and, for accepted scripts, a short run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match timeseq::Engine::load(text, 48000.0) {
        Ok(mut engine) => {
            engine.start(0);
            for n in 0..256u32 {
                engine.set_input(0, 0, if n % 16 < 8 { 5.0 } else { 0.0 });
                engine.process(1);
            }
        }
        Err(e) => {
            for err in e.errors() {
                let _ = err.to_string();
            }
        }
    }
});
