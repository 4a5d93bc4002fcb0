//! A small SoundFont (SF2) the tests write themselves, so that pitch,
//! level, presets and timing can be checked exactly.
//!
//! One looped sine sample (440 Hz at its root key, 44 kHz sample rate: 100
//! samples a period, a 4000-sample loop, long enough that FluidSynth keeps
//! it as it is) and three presets that play it from different root keys:
//!
//! | bank | program | key 69 (A4) sounds at |
//! |---|---|---|
//! | 0 | 0 | 440 Hz |
//! | 0 | 1 | 880 Hz |
//! | 1 | 0 | 220 Hz |
//!
//! Every voice has a 0.1 s release.

use std::path::Path;

/// (bank, program, root key) of each preset.
pub const PRESETS: [(u16, u16, u16); 3] = [(0, 0, 69), (0, 1, 57), (1, 0, 81)];
/// Release time of every voice, in seconds.
pub const RELEASE_SECONDS: f64 = 0.1;

fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(8 + body.len() + 1);
    c.extend_from_slice(id);
    c.extend_from_slice(&(body.len() as u32).to_le_bytes());
    c.extend_from_slice(body);
    if body.len() % 2 == 1 {
        c.push(0);
    }
    c
}

fn list(kind: &[u8; 4], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut body = kind.to_vec();
    for c in chunks {
        body.extend_from_slice(c);
    }
    chunk(b"LIST", &body)
}

fn name(s: &str) -> [u8; 20] {
    let mut n = [0u8; 20];
    n[..s.len()].copy_from_slice(s.as_bytes());
    n
}

fn u16s(out: &mut Vec<u8>, values: &[u16]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Writes the SoundFont to `path`.
pub fn write(path: &Path) {
    const RATE: u32 = 44_000;
    const PERIOD: usize = 100;
    const LEN: usize = 4400;
    let mut smpl = Vec::new();
    for i in 0..LEN + 46 {
        let v = if i < LEN {
            (16_000.0 * (2.0 * std::f64::consts::PI * i as f64 / PERIOD as f64).sin()) as i16
        } else {
            0 // the 46 zero samples the format asks for after each sample
        };
        smpl.extend_from_slice(&v.to_le_bytes());
    }

    let mut phdr = Vec::new();
    let mut pbag = Vec::new();
    let mut pgen = Vec::new();
    let mut inst = Vec::new();
    let mut ibag = Vec::new();
    let mut igen = Vec::new();
    for (i, (bank, program, root)) in PRESETS.iter().enumerate() {
        let i = i as u16;
        phdr.extend_from_slice(&name(&format!("preset {bank}:{program}")));
        u16s(&mut phdr, &[*program, *bank, i]);
        phdr.extend_from_slice(&[0u8; 12]);
        u16s(&mut pbag, &[i, 0]);
        u16s(&mut pgen, &[41, i]); // instrument
        inst.extend_from_slice(&name(&format!("sine root {root}")));
        u16s(&mut inst, &[i]);
        u16s(&mut ibag, &[i * 4, 0]);
        let release = (1200.0 * RELEASE_SECONDS.log2()).round() as i16 as u16;
        // overridingRootKey, sampleModes (loop), releaseVolEnv, sampleID (last).
        u16s(&mut igen, &[58, *root, 54, 1, 38, release, 53, 0]);
    }
    let n = PRESETS.len() as u16;
    phdr.extend_from_slice(&name("EOP"));
    u16s(&mut phdr, &[0, 0, n]);
    phdr.extend_from_slice(&[0u8; 12]);
    u16s(&mut pbag, &[n, 0]);
    u16s(&mut pgen, &[0, 0]);
    inst.extend_from_slice(&name("EOI"));
    u16s(&mut inst, &[n]);
    u16s(&mut ibag, &[n * 4, 0]);
    u16s(&mut igen, &[0, 0]);

    let mut shdr = Vec::new();
    shdr.extend_from_slice(&name("sine"));
    for v in [
        0u32,
        LEN as u32,
        PERIOD as u32,
        (LEN - 3 * PERIOD) as u32,
        RATE,
    ] {
        shdr.extend_from_slice(&v.to_le_bytes());
    }
    shdr.extend_from_slice(&[69, 0]); // original pitch, correction
    u16s(&mut shdr, &[0, 1]); // link, mono
    shdr.extend_from_slice(&name("EOS"));
    shdr.extend_from_slice(&[0u8; 26]);

    let info = list(
        b"INFO",
        &[
            chunk(b"ifil", &[2, 0, 1, 0]),
            chunk(b"isng", b"EMU8000\0"),
            chunk(b"INAM", b"impresario test\0"),
        ],
    );
    let sdta = list(b"sdta", &[chunk(b"smpl", &smpl)]);
    let pdta = list(
        b"pdta",
        &[
            chunk(b"phdr", &phdr),
            chunk(b"pbag", &pbag),
            chunk(b"pmod", &[0u8; 10]),
            chunk(b"pgen", &pgen),
            chunk(b"inst", &inst),
            chunk(b"ibag", &ibag),
            chunk(b"imod", &[0u8; 10]),
            chunk(b"igen", &igen),
            chunk(b"shdr", &shdr),
        ],
    );
    let mut body = b"sfbk".to_vec();
    body.extend_from_slice(&info);
    body.extend_from_slice(&sdta);
    body.extend_from_slice(&pdta);
    std::fs::write(path, chunk(b"RIFF", &body)).unwrap();
}

/// The frequency of a periodic signal, from the upward zero crossings
/// (interpolated between samples) over the whole slice.
pub fn frequency(samples: &[f32], sample_rate: f64) -> f64 {
    let mut crossings = Vec::new();
    for i in 1..samples.len() {
        let (a, b) = (samples[i - 1], samples[i]);
        if a < 0.0 && b >= 0.0 {
            crossings.push((i - 1) as f64 + (-a / (b - a)) as f64);
        }
    }
    assert!(
        crossings.len() >= 3,
        "no periodic signal: {} crossings",
        crossings.len()
    );
    let span = crossings.last().unwrap() - crossings[0];
    (crossings.len() - 1) as f64 / span * sample_rate
}

/// Root mean square.
pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}
