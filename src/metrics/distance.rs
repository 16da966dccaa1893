//! Distances between weight vectors, as the paper defines them (§3.3):
//! d(W1, W2) = ‖W1 − W2‖_F / ‖W2‖_F, with ‖·‖_F the Frobenius norm of all
//! parameters concatenated into one vector. Accumulated in float64.

use tch::{Kind, Tensor};

fn squared_norm(ts: &[Tensor]) -> Tensor {
    ts.iter()
        .map(|t| t.to_kind(Kind::Double).square().sum(Kind::Double))
        .fold(Tensor::from(0.0f64).to_device(device_of(ts)), |acc, s| {
            acc + s
        })
}

fn device_of(ts: &[Tensor]) -> tch::Device {
    ts.first().map_or(tch::Device::Cpu, |t| t.device())
}

/// ‖W1 − W2‖_F.
pub fn absolute(w1: &[Tensor], w2: &[Tensor]) -> f64 {
    tch::no_grad(|| {
        let diffs: Vec<Tensor> = w1.iter().zip(w2).map(|(a, b)| a - b).collect();
        squared_norm(&diffs).sqrt().double_value(&[])
    })
}

/// d(W1, W2) = ‖W1 − W2‖_F / ‖W2‖_F.
pub fn relative(w1: &[Tensor], w2: &[Tensor]) -> f64 {
    let denom = tch::no_grad(|| squared_norm(w2).sqrt().double_value(&[]));
    absolute(w1, w2) / denom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        let w1 = [
            Tensor::from_slice(&[3.0f32, 0.0]),
            Tensor::from_slice(&[0.0f32]),
        ];
        let w2 = [
            Tensor::from_slice(&[0.0f32, 0.0]),
            Tensor::from_slice(&[4.0f32]),
        ];
        assert!((absolute(&w1, &w2) - 5.0).abs() < 1e-12);
        assert!((relative(&w1, &w2) - 5.0 / 4.0).abs() < 1e-12);
        assert_eq!(relative(&w2, &w2), 0.0);
    }
}
