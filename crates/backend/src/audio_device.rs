//! An ALSA audio device through cpal. Its callback is the engine's clock:
//! each callback runs one engine cycle of the callback's length (MIDI in
//! before, MIDI out after, as the internal clock does) and plays the
//! engine's output bus.
//!
//! Used by the `alsa` backend when `audio_output` is `auto` (the `default`
//! device) or names a device; when no device opens, the backend runs on
//! the internal clock and says why.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use engine::{alloc_guard, ClockDriver, EngineConfig, EngineCore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A device ready to be opened.
pub struct Device {
    device: cpal::Device,
    config: cpal::StreamConfig,
    name: String,
}

impl Device {
    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Finds the output device `wanted` (`auto`: the default one) and a stream
/// configuration at the engine's sample rate and block size. Off the
/// engine thread.
pub fn find(wanted: &str, config: EngineConfig) -> Result<Device, String> {
    let host = cpal::default_host();
    let device = if wanted == "auto" {
        host.default_output_device()
            .ok_or_else(|| "ALSA has no default output device".to_string())?
    } else {
        host.output_devices()
            .map_err(|e| format!("cannot list ALSA output devices: {e}"))?
            .find(|d| d.name().is_ok_and(|n| n == wanted))
            .ok_or_else(|| format!("no ALSA output device named `{wanted}`"))?
    };
    let name = device.name().unwrap_or_else(|_| wanted.to_string());
    let rate = cpal::SampleRate(config.sample_rate);
    let supported = device
        .supported_output_configs()
        .map_err(|e| format!("{name}: cannot read its configurations: {e}"))?
        .filter(|c| c.sample_format() == cpal::SampleFormat::F32)
        .find(|c| c.min_sample_rate() <= rate && rate <= c.max_sample_rate())
        .ok_or_else(|| {
            format!(
                "{name} plays no 32-bit float audio at {} Hz; set sample_rate to one it supports",
                config.sample_rate
            )
        })?;
    let channels = supported.channels().max(1);
    Ok(Device {
        device,
        name,
        config: cpal::StreamConfig {
            channels,
            sample_rate: rate,
            buffer_size: cpal::BufferSize::Fixed(config.block_size),
        },
    })
}

/// A running device clock. Keep it alive; [`DeviceClock::stop`] ends it.
pub struct DeviceClock {
    stream: cpal::Stream,
    stopping: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl DeviceClock {
    /// Starts the device with the engine `core` and the MIDI `driver` in
    /// its callback.
    pub fn start(
        device: Device,
        mut core: EngineCore,
        mut driver: impl ClockDriver,
    ) -> Result<DeviceClock, String> {
        let stopping = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let (stop_seen, done) = (stopping.clone(), stopped.clone());
        let channels = device.config.channels as usize;
        let mut sched_noted = false;
        let callback = move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
            if !sched_noted {
                // Once: the audio thread, as cpal/ALSA scheduled it.
                engine::realtime::note_current_thread();
                sched_noted = true;
            }
            let frames = (data.len() / channels) as u32;
            if stop_seen.load(Ordering::Acquire) {
                if !done.load(Ordering::Relaxed) {
                    alloc_guard::rt_section(|| driver.stop(&mut core, frames));
                    done.store(true, Ordering::Release);
                }
                data.fill(0.0);
                return;
            }
            alloc_guard::rt_section(|| driver.before_cycle(&mut core, frames));
            core.cycle(frames);
            alloc_guard::rt_section(|| {
                driver.after_cycle(&mut core, frames);
                let (left, right) = core.audio_out();
                for (i, frame) in data.chunks_mut(channels).enumerate() {
                    let (l, r) = (
                        left.get(i).copied().unwrap_or(0.0),
                        right.get(i).copied().unwrap_or(0.0),
                    );
                    match frame {
                        [mono] => *mono = 0.5 * (l + r),
                        [a, b, rest @ ..] => {
                            *a = l;
                            *b = r;
                            rest.fill(0.0);
                        }
                        [] => {}
                    }
                }
            });
        };
        let name = device.name.clone();
        let stream = device
            .device
            .build_output_stream(
                &device.config,
                callback,
                move |e| tracing::error!("audio device {name}: {e}"),
                None,
            )
            .map_err(|e| format!("{}: cannot open a stream: {e}", device.name))?;
        stream
            .play()
            .map_err(|e| format!("{}: cannot start: {e}", device.name))?;
        Ok(DeviceClock {
            stream,
            stopping,
            stopped,
        })
    }

    /// Stops after one last callback that ends every note and sends those
    /// note-offs (500 ms at most: a device that stopped calling cannot
    /// carry them anyway).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.stopped.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(self.stream);
    }
}
