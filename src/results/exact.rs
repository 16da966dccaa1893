//! f64 through JSON without loss: written as the integer of its IEEE-754 bits,
//! so a checkpoint's history reads back bit for bit (serde_json's default float
//! parsing may be off by one unit in the last place, and writes NaN as null).
//! Plain JSON numbers, as older checkpoints hold, are still read.
//! Use as `#[serde(with = "crate::results::exact")]`.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(x.to_bits())
}

struct Bits;

impl Visitor<'_> for Bits {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a float's bits as an unsigned integer, or a float")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(f64::from_bits(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(f64::from_bits(v as u64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(Bits)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct X(#[serde(with = "super")] f64);

    #[test]
    fn every_float_reads_back_bit_for_bit() {
        for x in [
            0.1,
            -2.5e-300,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.693_147_180_621_261_6,
            1e308,
        ] {
            let text = serde_json::to_string(&X(x)).unwrap();
            let back: X = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0.to_bits(), x.to_bits(), "{x} via {text}");
        }
        let legacy: X = serde_json::from_str("0.25").unwrap();
        assert_eq!(legacy.0, 0.25);
    }
}
