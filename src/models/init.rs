//! Parameter initialisation following PyTorch's layer defaults, not tch's.
//!
//! torch.nn.Linear.reset_parameters: weight ~ kaiming_uniform_(a=√5), i.e.
//! U(-b, b) with b = gain·√(3/fan_in) and gain = √(2/(1+a²)) = √(1/3), so
//! b = 1/√fan_in; bias ~ U(-1/√fan_in, 1/√fan_in). tch's own default uses the ReLU
//! gain (b = √6/√fan_in), which would change every result, hence this module.

use tch::nn::{self, Init};

pub fn uniform_bound(fan_in: i64) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// A linear layer `in_dim → out_dim` under `path`, weight drawn before bias as in
/// PyTorch, so the same torch seed gives the same numbers in both.
pub fn linear(path: &nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    let ws = path.var("weight", &[out_dim, in_dim], uniform_bound(in_dim));
    let bs = path.var("bias", &[out_dim], uniform_bound(in_dim));
    nn::Linear { ws, bs: Some(bs) }
}
