//! A tiny deterministic stand-in for the cargo-fuzz target (which needs nightly): feeds
//! mutated sample/conformance scripts (byte flips, truncations, insertions) to the loader
//! and runs the accepted ones. Nothing may panic.

mod common;

fn mutate(seed: u64, src: &[u8]) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = src.to_vec();
    for _ in 0..(1 + next() % 4) {
        if v.is_empty() {
            break;
        }
        let i = (next() % v.len() as u64) as usize;
        match next() % 5 {
            0 => v[i] = b"{}[],:\"0-9e.xtrufalsn"[(next() % 21) as usize],
            1 => v.truncate(i),
            2 => {
                v.remove(i);
            }
            3 => v.insert(i, b"0123456789-.e"[(next() % 13) as usize]),
            _ => {
                let j = (next() % v.len() as u64) as usize;
                v.swap(i, j);
            }
        }
    }
    v
}

#[test]
fn mutated_scripts_never_panic() {
    let files = common::fixture_scripts();
    let mut accepted = 0;
    for (k, f) in files.iter().enumerate() {
        let src = std::fs::read(f).unwrap();
        for seed in 0..40u64 {
            let data = mutate(seed * 1000 + k as u64, &src);
            let Ok(text) = std::str::from_utf8(&data) else {
                continue;
            };
            match timeseq::Engine::load(text, 48000.0) {
                Ok(mut e) => {
                    accepted += 1;
                    e.start(0);
                    for n in 0..256u32 {
                        e.set_input(0, 0, if n % 16 < 8 { 5.0 } else { 0.0 });
                        e.process(1);
                    }
                }
                Err(err) => {
                    assert!(!err.errors().is_empty());
                }
            }
        }
    }
    assert!(accepted > 0);
}
