//! Seeded random values for every schema type (feature `arbitrary`), so the differential
//! tests can generate valid messages of any API and version from the schema alone.

use bytes::Bytes;

/// SplitMix64: tiny, seedable, and good enough to pick test values.
#[derive(Debug, Clone)]
pub struct Gen {
    state: u64,
}

impl Gen {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Gen { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An integer biased towards the edges (0, ±1, MIN, MAX) that encoders get wrong.
    pub fn int(&mut self) -> i64 {
        match self.below(8) {
            0 => 0,
            1 => -1,
            2 => 1,
            3 => i64::MIN,
            4 => i64::MAX,
            5 => self.below(256) as i64,
            _ => self.next_u64() as i64,
        }
    }

    /// A short string with 1-, 2-, 3- and 4-byte UTF-8 characters.
    pub fn string(&mut self) -> String {
        const CHARS: [char; 10] = ['a', 'b', 'z', '_', '-', '.', '0', 'é', '世', '🦀'];
        let len = self.below(7);
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect()
    }

    /// A short byte string.
    pub fn bytes(&mut self) -> Bytes {
        let len = self.below(13);
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
