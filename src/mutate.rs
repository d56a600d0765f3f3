//! The decoders' cheap property test: valid samples, damaged by a seeded mutator (bit flips,
//! truncations, splices of two samples, repeated or dropped spans, hostile tokens), so every
//! `make test` replays the same two thousand damaged inputs per decoder in well under a
//! second. The fuzz targets in `fuzz/` search much further (docs/fuzzing.md); this keeps
//! the ground they covered from eroding.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Damaged inputs per decoder and test run.
pub const CASES: usize = 2000;

/// Text that tends to break decoders: numbers at the edges of their types, dates at the edges
/// of their formats, quoting and nesting, non-ASCII and control characters.
const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "0",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "4294967295",
    "\"00010101\"",
    "\"99991231\"",
    "\"9999-12-31T23:59:60Z\"",
    "\"0000-01-01T00:00:00-23:59\"",
    "\"10675199.02:48:05.4775807\"",
    "\"NaN\"",
    "\\u0000",
    "\\ud800",
    "é",
    "表",
    "\u{0}",
    "PAR1",
];

/// xorshift64*: small, seeded, and the same sequence on every platform.
pub struct Mutator {
    state: u64,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { state: seed.max(1) }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A span of `data`: a start and an end, both inside it.
    fn span(&mut self, len: usize) -> (usize, usize) {
        let start = self.below(len + 1);
        (start, start + self.below(len - start + 1))
    }

    /// One damaged variant of one of `samples` (1 to 4 edits).
    pub fn mutate(&mut self, samples: &[&[u8]]) -> Vec<u8> {
        let mut out = samples[self.below(samples.len())].to_vec();
        for _ in 0..=self.below(4) {
            let len = out.len();
            match self.below(8) {
                0 if len > 0 => {
                    let at = self.below(len);
                    out[at] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let at = self.below(len);
                    out[at] = self.next() as u8;
                }
                2 => out.truncate(self.below(len + 1)),
                3 => {
                    let (start, end) = self.span(len);
                    out.drain(start..end);
                }
                4 => {
                    let (start, end) = self.span(len);
                    let copy = out[start..end].to_vec();
                    out.splice(end..end, copy);
                }
                5 => {
                    let token = TOKENS[self.below(TOKENS.len())].as_bytes();
                    let (start, end) = self.span(len);
                    let end = start + (end - start).min(self.below(8));
                    out.splice(start..end, token.iter().copied());
                }
                _ => {
                    let other = samples[self.below(samples.len())];
                    let (from, to) = self.span(other.len());
                    let at = self.below(len + 1);
                    out.truncate(at);
                    out.extend_from_slice(&other[from..to]);
                }
            }
        }
        out
    }
}

/// Checks that `decode` accepts every sample, and that it neither panics nor fails without
/// saying why on [`CASES`] damaged variants of them. A panic fails the test with the input
/// that caused it, ready to become a regression test beside the decoder.
pub fn check<E: std::fmt::Display>(
    seed: u64,
    samples: &[&[u8]],
    decode: impl Fn(&[u8]) -> Result<(), E>,
) {
    for sample in samples {
        if let Err(e) = decode(sample) {
            panic!(
                "a valid sample does not decode ({e}): {}",
                String::from_utf8_lossy(sample)
            );
        }
    }
    let mut mutator = Mutator::new(seed);
    for _ in 0..CASES {
        let input = mutator.mutate(samples);
        match catch_unwind(AssertUnwindSafe(|| decode(&input))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => assert!(
                !e.to_string().trim().is_empty(),
                "an error without a message for {input:?}"
            ),
            Err(_) => panic!("the decoder panicked on {input:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mutations_are_seeded_and_varied() {
        let samples: &[&[u8]] = &[br#"{"a":[1,2,3],"b":"text"}"#, b"PAR1\x00\x01PAR1"];
        let run = |seed| {
            let mut m = Mutator::new(seed);
            (0..200).map(|_| m.mutate(samples)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let cases = run(7);
        let distinct: std::collections::BTreeSet<_> = cases.iter().collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
        assert!(cases.iter().any(|c| c.is_empty() || c.len() < 10));
        assert!(cases.iter().any(|c| c.len() > samples[0].len() + 10));
    }

    #[test]
    #[should_panic(expected = "panicked on")]
    fn a_panicking_decoder_fails_the_check() {
        check(1, &[b"[1,2]"], |bytes| {
            let _ = bytes[1];
            serde_json::from_slice::<Vec<u8>>(bytes).map(drop)
        });
    }
}
