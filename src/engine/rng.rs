//! Keyed random streams: every draw comes from a stream named by what it decides.
//!
//! A stream is a Xoshiro256++ (a named, portable generator) seeded from a SplitMix64 hash of
//! (master seed, replication, tick, user or cohort, stage, index). Nothing depends on which thread
//! reaches a stream first, so results are identical on any thread count, and the baseline and the
//! scenario meet the same draws wherever their states agree (common random numbers, MODEL.md).

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator behind every stream.
pub type Stream = Xoshiro256PlusPlus;

/// What a stream decides; part of its key. Values are fixed forever (changing one changes results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stage {
    /// A user's Taobao app and Alipay flags at the start of a replication.
    Population = 1,
    /// A user's organic impressions, their order and clicks in one tick.
    Exposure = 2,
    /// A user's offered boosted impressions of one traffic program in one tick.
    BoostOffer = 3,
    /// Which of a traffic program's offered boosted impressions are kept in one tick.
    BoostKeep = 4,
    /// One session: its arrival key, then its jump, landing, basket, coupon, leak, decision, payment.
    Session = 5,
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream for (seed, replication, tick, unit, stage, index); `unit` is a user or a cohort.
#[inline]
pub fn stream(
    seed: u64,
    replication: u64,
    tick: u64,
    unit: u64,
    stage: Stage,
    index: u64,
) -> Stream {
    let key = [replication, tick, unit, stage as u64, index]
        .iter()
        .fold(mix64(seed), |h, &x| mix64(h ^ x));
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&mix64(key ^ mix64(i as u64 + 1)).to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Pins the first draws of one stream: a change here changes every published result.
    #[test]
    fn value_stability() {
        let mut s = stream(2023, 1, 2, 3, Stage::Session, 4);
        let first: Vec<u64> = (0..3).map(|_| s.next_u64()).collect();
        // Recorded when the key layout was fixed: a change here changes every published result.
        assert_eq!(
            first,
            [
                0x1889_73b4_2355_cdee,
                0xf7c3_10ec_14d0_7dcc,
                0xa9c6_7a75_da86_b856
            ]
        );
        // SplitMix64's first output from state 0, as published with the algorithm.
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn keys_differ_by_every_component() {
        let base = stream(1, 1, 1, 1, Stage::Exposure, 1).next_u64();
        let others = [
            stream(2, 1, 1, 1, Stage::Exposure, 1).next_u64(),
            stream(1, 2, 1, 1, Stage::Exposure, 1).next_u64(),
            stream(1, 1, 2, 1, Stage::Exposure, 1).next_u64(),
            stream(1, 1, 1, 2, Stage::Exposure, 1).next_u64(),
            stream(1, 1, 1, 1, Stage::Session, 1).next_u64(),
            stream(1, 1, 1, 1, Stage::Exposure, 2).next_u64(),
        ];
        assert!(others.iter().all(|&x| x != base));
    }
}
