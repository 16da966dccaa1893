//! Counter-based randomness: a value derived from (seed, index) alone, computed on
//! whole tensors on the device. Random-label copies are made per batch from it, so
//! no copy is ever stored and every epoch and run sees the same copies.
//!
//! Values are 32-bit integers held in int64 tensors. The mixer is lowbias32 (Chris
//! Wellons, hash-prospector), a bijection on 32-bit integers with good avalanche.
//! Multiplications are split in 16-bit halves so no int64 product overflows.

use tch::Tensor;

const MASK: i64 = 0xFFFF_FFFF;

/// x·c mod 2^32 for x, c < 2^32, without overflowing int64.
fn mul32(x: &Tensor, c: i64) -> Tensor {
    let lo = x * (c & 0xFFFF);
    let hi = (x * (c >> 16))
        .bitwise_and(0xFFFF)
        .bitwise_left_shift_tensor_scalar(16);
    (lo + hi).bitwise_and(MASK)
}

fn xorshift(x: &Tensor, by: i64) -> Tensor {
    x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(by))
}

pub fn mix32(x: &Tensor) -> Tensor {
    let x = mul32(&xorshift(&x.bitwise_and(MASK), 16), 0x7feb_352d);
    let x = mul32(&xorshift(&x, 15), 0x846c_a68b);
    xorshift(&x, 16)
}

/// lowbias32 on the host, for keys: the same function as [`mix32`].
fn mix32_scalar(v: u32) -> u32 {
    let v = (v ^ (v >> 16)).wrapping_mul(0x7feb_352d);
    let v = (v ^ (v >> 15)).wrapping_mul(0x846c_a68b);
    v ^ (v >> 16)
}

/// A 32-bit key for a seed and a purpose, so streams of one seed are independent.
/// Computed on the host: no device round trip per batch.
pub fn key(seed: i64, purpose: i64) -> i64 {
    let d = crate::rng::derive(seed, purpose);
    i64::from(mix32_scalar(((d ^ (d >> 32)) & MASK) as u32))
}

/// hash(key, x) for every element of `x` (int64, values < 2^32).
pub fn hash(key: i64, x: &Tensor) -> Tensor {
    mix32(&mix32(x).bitwise_xor(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn mixing_is_a_well_spread_bijection_on_a_sample() {
        let x = Tensor::arange(1 << 16, (Kind::Int64, tch::Device::Cpu));
        let h = mix32(&x);
        assert_eq!(
            h.unique_dim(0, true, false, false).0.size()[0],
            1 << 16,
            "no collisions"
        );
        assert!(h.ge(0).all().int64_value(&[]) == 1 && h.le(MASK).all().int64_value(&[]) == 1);
        // Each output bit is set about half the time.
        for bit in [0, 7, 15, 23, 31] {
            let ones = h
                .bitwise_right_shift_tensor_scalar(bit)
                .bitwise_and(1)
                .sum(Kind::Int64);
            let frac = ones.int64_value(&[]) as f64 / (1 << 16) as f64;
            assert!((frac - 0.5).abs() < 0.01, "bit {bit}: {frac}");
        }
        // The device version agrees with the host one on every sampled value.
        let host: Vec<i64> = (0..1i64 << 16)
            .map(|i| i64::from(mix32_scalar(i as u32)))
            .collect();
        assert_eq!(Vec::<i64>::try_from(&h).unwrap(), host);
        assert_eq!(mix32_scalar(0), 0);
    }

    #[test]
    fn keys_separate_streams() {
        let x = Tensor::arange(1000, (Kind::Int64, tch::Device::Cpu));
        assert!(!hash(key(1, 0), &x).equal(&hash(key(1, 1), &x)));
        assert!(hash(key(1, 0), &x).equal(&hash(key(1, 0), &x)));
    }
}
