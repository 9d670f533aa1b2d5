//! The simulation's seeded PRNG: xoshiro256** seeded through SplitMix64, integers only.
//!
//! Both generators are Vigna's public-domain reference algorithms
//! (<https://prng.di.unimi.it/>): SplitMix64 expands the user's 64-bit seed into the 256-bit
//! xoshiro state (as the authors recommend), and xoshiro256** draws the numbers. They use only
//! wrapping integer arithmetic, so a seed gives the same sequence on every target. The tests
//! check both against the reference outputs.
//!
//! Derived draws are integer too: [`Rng::below`] is Lemire's multiply-shift with rejection
//! (exactly uniform), [`Rng::chance_permille`] a Bernoulli trial, and [`Rng::poisson_gap_us`] an
//! exponential gap computed with a fixed-point logarithm (no floats, so no platform-dependent
//! rounding).

/// SplitMix64: a 64-bit counter through a mixing function. Used to seed [`Rng`].
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// xoshiro256**: the simulation's random numbers.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// `ln 2` in Q16 fixed point (0.693147… × 65536).
const LN2_Q16: u128 = 45_426;

impl Rng {
    /// A generator whose state is four SplitMix64 outputs of `seed` (never all zero).
    pub fn new(seed: u64) -> Rng {
        let mut sm = SplitMix64::new(seed);
        Rng::from_state([sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()])
    }

    /// A generator with this exact state (for the reference test vectors). An all-zero state
    /// would only ever yield zeros, so it is replaced by `Rng::new(0)`'s state.
    pub fn from_state(s: [u64; 4]) -> Rng {
        if s == [0; 4] {
            return Rng::new(0);
        }
        Rng { s }
    }

    /// A generator for a sub-stream (a client, the upstream) that does not overlap the others
    /// in practice: seeded from this one's next output and `stream`.
    pub fn fork(&mut self, stream: u64) -> Rng {
        let seed = self.next_u64() ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire: the high half of x·n is uniform once the biased low range is rejected.
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform integer in `lo..=hi` (`lo` when `hi <= lo`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability `permille / 1000` (always for 1000 and above, never for 0).
    pub fn chance_permille(&mut self, permille: u32) -> bool {
        self.below(1_000) < u64::from(permille)
    }

    /// The gap, in µs, to the next arrival of a Poisson process of `per_sec` arrivals per
    /// second: `−ln(u) × 1e6 / per_sec` for a uniform `u`, rounded to the nearest µs, at least
    /// 1 µs so that arrivals always move the clock. Computed in u128 from the exponential draw
    /// (not from a whole-µs mean gap, which would turn 60 000/s into 62 500/s); `per_sec` 0
    /// counts as 1.
    pub fn poisson_gap_us(&mut self, per_sec: u64) -> u64 {
        // u uniform in (0, 1] as x / 2^32 with x in 1..=2^32; −ln u = (32 − log2 x)·ln 2.
        let x = (self.next_u64() >> 32) + 1;
        let neg_log2_q16 = (32u64 << 16) - log2_q16(x);
        let neg_ln_q16 = (u128::from(neg_log2_q16) * LN2_Q16) >> 16;
        let den = u128::from(per_sec.max(1)) << 16;
        let gap = (neg_ln_q16 * 1_000_000 + den / 2) / den;
        u64::try_from(gap).unwrap_or(u64::MAX).max(1)
    }
}

/// `log2(x)` in Q16 fixed point for `x ≥ 1`: the integer part from the bit length, 16
/// fractional bits by repeated squaring of the mantissa.
pub fn log2_q16(x: u64) -> u64 {
    debug_assert!(x > 0);
    let int = 63 - u64::from(x.max(1).leading_zeros());
    // The mantissa x / 2^int in [1, 2), as Q62.
    let mut y: u128 = if int <= 62 {
        u128::from(x) << (62 - int)
    } else {
        u128::from(x) >> (int - 62)
    };
    let mut frac = 0;
    for bit in (0..16).rev() {
        y = (y * y) >> 62;
        if y >= 2 << 62 {
            y >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 16) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        let mut sm = SplitMix64::new(0);
        assert_eq!(sm.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(sm.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(sm.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn xoshiro256starstar_matches_the_reference_outputs() {
        let mut r = Rng::from_state([1, 2, 3, 4]);
        let got: [u64; 4] = core::array::from_fn(|_| r.next_u64());
        assert_eq!(got, [11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let a: [u64; 8] = {
            let mut r = Rng::new(7);
            core::array::from_fn(|_| r.next_u64())
        };
        let b: [u64; 8] = {
            let mut r = Rng::new(7);
            core::array::from_fn(|_| r.next_u64())
        };
        let c: [u64; 8] = {
            let mut r = Rng::new(8);
            core::array::from_fn(|_| r.next_u64())
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn all_zero_state_is_replaced() {
        let mut r = Rng::from_state([0; 4]);
        assert!((0..4).any(|_| r.next_u64() != 0));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            let v = r.below(7);
            seen[v as usize] += 1;
        }
        // Each value near 1000; a broken reduction would leave some at 0 or far off.
        assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(r.between(5, 5), 5);
        assert_eq!(r.between(9, 3), 9);
        assert!((10..=12).contains(&r.between(10, 12)));
    }

    #[test]
    fn chance_permille_edges_and_rate() {
        let mut r = Rng::new(2);
        assert!((0..1000).all(|_| !r.chance_permille(0)));
        assert!((0..1000).all(|_| r.chance_permille(1000)));
        let hits = (0..100_000).filter(|_| r.chance_permille(250)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }

    #[test]
    fn log2_q16_is_exact_on_powers_and_close_elsewhere() {
        assert_eq!(log2_q16(1), 0);
        assert_eq!(log2_q16(2), 1 << 16);
        assert_eq!(log2_q16(1 << 32), 32 << 16);
        // log2(3) = 1.5849625 → 103872.6 in Q16; truncated squaring may lose the last bit.
        assert!(
            (103_871..=103_873).contains(&log2_q16(3)),
            "{}",
            log2_q16(3)
        );
        assert_eq!(log2_q16(u64::MAX) >> 16, 63);
    }

    #[test]
    fn poisson_gaps_give_the_requested_rate() {
        // 60 000/s was 62 500/s when the mean gap was rounded to whole µs first.
        for per_sec in [10u64, 200, 60_000, 100_000] {
            let mut r = Rng::new(3);
            let n = 200_000u64;
            let total_us: u64 = (0..n).map(|_| r.poisson_gap_us(per_sec)).sum();
            // Arrivals per second over the whole draw, within 1.5 %.
            let rate = u128::from(n) * 1_000_000 / u128::from(total_us);
            let lo = u128::from(per_sec) * 985 / 1_000;
            let hi = u128::from(per_sec) * 1_015 / 1_000;
            assert!((lo..=hi).contains(&rate), "{per_sec}/s drew {rate}/s");
        }
        assert!(Rng::new(1).poisson_gap_us(0) >= 1);
        assert!(Rng::new(1).poisson_gap_us(u64::MAX) >= 1);
    }
}
