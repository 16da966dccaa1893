//! Parameter initialisation following PyTorch's layer defaults, not tch's.
//!
//! torch.nn.Linear.reset_parameters and torch.nn.Conv2d.reset_parameters: weight ~
//! kaiming_uniform_(a=√5), i.e. U(-b, b) with b = √3·gain/√fan_in and
//! gain = √(2/(1+a²)) (so b ≈ 1/√fan_in); bias ~ U(-1/√fan_in, 1/√fan_in). The
//! bounds are computed with PyTorch's own arithmetic (torch.nn.init.kaiming_uniform_,
//! calculate_gain("leaky_relu", √5)) so that, drawing in PyTorch's order from the
//! same seed, minima and PyTorch produce the same weights bit for bit. tch's own
//! default uses the ReLU gain (b = √6/√fan_in), which would change every result.

use tch::nn::Init;

/// torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5)) for a weight with `fan_in`.
pub fn kaiming_uniform(fan_in: i64) -> Init {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a.powi(2))).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    let b = 3f64.sqrt() * std;
    Init::Uniform { lo: -b, up: b }
}

/// The bias draw of Linear/Conv2d.reset_parameters: U(±1/√fan_in).
pub fn bias_uniform(fan_in: i64) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_bound_is_one_over_root_fan_in() {
        for fan_in in [1, 3, 27, 4608] {
            let Init::Uniform { lo, up } = kaiming_uniform(fan_in) else {
                panic!("kaiming_uniform is a uniform init");
            };
            let expected = 1.0 / (fan_in as f64).sqrt();
            assert!((up - expected).abs() < 1e-12 * expected, "{fan_in}: {up}");
            assert_eq!(lo, -up);
        }
    }
}
