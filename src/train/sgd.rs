//! Stochastic gradient descent with explicit state, following the update rule of
//! `torch.optim.SGD` (PyTorch 2.x, `_single_tensor_sgd`), for each parameter p
//! with gradient g at step t:
//!
//! ```text
//! g ← g + weight_decay · p                        (if weight_decay ≠ 0)
//! if momentum ≠ 0:
//!     b ← g                            at t = 1   (no dampening on the first step)
//!     b ← momentum · b + (1 − dampening) · g   otherwise
//!     g ← g + momentum · b  if nesterov,  else  g ← b
//! p ← p − lr · g
//! ```
//!
//! Every step goes through `_multi_tensor_sgd`'s `_foreach_*` operators
//! (src/train/sgd_shim.cpp), the first step's momentum buffers made there as
//! torch makes them: a few dispatches per step instead of several per
//! parameter, the same arithmetic (`add_(other, alpha)`, a fused multiply-add in
//! libtorch's vectorised CPU kernels) as the single-tensor path on every device.
//! The dense engine's host update (`SgdOptions::update_host`) computes the same
//! floats. Gradients are cleared to none, as `zero_grad` does by
//! default. The momentum buffers are plain tensors so they can be checkpointed. With a
//! gradient scaler (`precision: "fp16"`) the loss is scaled before backward and
//! each step first unscales the gradients, skipped when one is not finite, as
//! `torch.amp.GradScaler.step` does.

mod host;

use super::precision::GradScaler;
use anyhow::{bail, Result};
use std::os::raw::{c_char, c_int};
use tch::Tensor;
use torch_sys::C_tensor;

pub use host::HostBuffer;

extern "C" {
    fn minima_grads_to_none(params: *const *mut C_tensor, n: c_int);
    #[allow(clippy::too_many_arguments)]
    fn minima_sgd_foreach(
        params: *const *mut C_tensor,
        buffers: *const *mut C_tensor,
        n: c_int,
        lr: f64,
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: c_int,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The libtorch handles the shim takes (`at::Tensor*`); it reads through them
/// only while the tensors are borrowed.
fn handles<'a>(tensors: impl Iterator<Item = &'a Tensor>) -> Vec<*mut C_tensor> {
    tensors.map(|t| t.as_ptr() as *mut C_tensor).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdOptions {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

#[derive(Debug)]
pub struct Sgd {
    pub options: SgdOptions,
    buffers: Vec<Option<Tensor>>,
    pub scaler: Option<GradScaler>,
}

impl Sgd {
    pub fn new(options: SgdOptions, num_params: usize) -> Result<Sgd> {
        // The same preconditions torch.optim.SGD enforces.
        if options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0) {
            bail!("nesterov momentum requires momentum > 0 and dampening = 0");
        }
        Ok(Sgd {
            options,
            buffers: (0..num_params).map(|_| None).collect(),
            scaler: None,
        })
    }

    /// The loss to backpropagate: scaled when a gradient scaler is on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        match &self.scaler {
            Some(s) => s.scale_loss(loss),
            None => loss.shallow_clone(),
        }
    }

    /// The momentum buffers, `None` where a parameter has had no step yet.
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    /// Continues from saved buffers (a checkpoint); the count must match.
    pub fn restore(&mut self, buffers: Vec<Option<Tensor>>) -> Result<()> {
        if buffers.len() != self.buffers.len() {
            bail!(
                "checkpoint has {} momentum buffers, the model {} parameters",
                buffers.len(),
                self.buffers.len()
            );
        }
        self.buffers = buffers;
        Ok(())
    }

    /// `zero_grad(set_to_none=True)`, torch.optim's default.
    pub fn zero_grad(params: &mut [Tensor]) {
        let ptrs = handles(params.iter());
        // Safety: the handles are live tensors of `params`, borrowed for the call.
        unsafe { minima_grads_to_none(ptrs.as_ptr(), ptrs.len() as c_int) }
    }

    /// One update of every parameter that has a gradient (none when a scaler
    /// finds an inf or NaN among them).
    pub fn step(&mut self, params: &[Tensor]) {
        if let Some(scaler) = &mut self.scaler {
            let finite = tch::no_grad(|| scaler.unscale(params));
            scaler.update(finite);
            if !finite {
                return;
            }
        }
        if self.options.momentum != 0.0 {
            assert_eq!(
                self.buffers.len(),
                params.len(),
                "one momentum buffer per parameter"
            );
            // The shim makes the first step's buffers in these placeholders.
            for b in self.buffers.iter_mut().filter(|b| b.is_none()) {
                *b = Some(Tensor::new());
            }
        }
        self.step_foreach(params);
        // A parameter without a gradient was not stepped and has no buffer yet.
        for b in self.buffers.iter_mut() {
            if b.as_ref().is_some_and(|b| !b.defined()) {
                *b = None;
            }
        }
    }

    /// Every parameter in one `_multi_tensor_sgd` update (with momentum, a
    /// buffer or a placeholder for each parameter).
    fn step_foreach(&mut self, params: &[Tensor]) {
        let o = self.options;
        let ps = handles(params.iter());
        let bs = handles(self.buffers.iter().flatten());
        let mut err = [0 as c_char; 512];
        // Safety: `ps` (and `bs`, as long when momentum is on: `step` checks) are
        // live tensors borrowed for the call; `err` is NUL-terminated
        // by the shim within its length.
        let code = tch::no_grad(|| unsafe {
            minima_sgd_foreach(
                ps.as_ptr(),
                bs.as_ptr(),
                ps.len() as c_int,
                o.lr,
                o.momentum,
                o.dampening,
                o.weight_decay,
                o.nesterov as c_int,
                err.as_mut_ptr(),
                err.len() as c_int,
            )
        });
        if code != 0 {
            // As tch's own operators do when libtorch refuses one mid-step.
            let message = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
            panic!("SGD step: {}", message.to_string_lossy());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn param(values: &[f64]) -> Tensor {
        Tensor::from_slice(values)
            .to_kind(Kind::Double)
            .set_requires_grad(true)
    }

    /// Gradient of 0.5·Σ c·p² is c·p: lets the test know g at every step.
    fn grad_step(sgd: &mut Sgd, p: &mut Tensor, c: f64) {
        Sgd::zero_grad(std::slice::from_mut(p));
        let loss = (&*p * &*p * c).sum(Kind::Double) * 0.5;
        loss.backward();
        sgd.step(std::slice::from_ref(p));
    }

    #[test]
    fn matches_torch_rule_with_momentum_weight_decay_dampening() {
        let o = SgdOptions {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 0.01,
            nesterov: false,
        };
        let mut sgd = Sgd::new(o, 1).unwrap();
        let mut p = param(&[1.0, -2.0]);
        let c = 3.0;
        // Independent scalar evaluation of the documented rule.
        let mut want = [1.0f64, -2.0];
        let mut buf = [0.0f64; 2];
        for t in 0..4 {
            grad_step(&mut sgd, &mut p, c);
            for i in 0..2 {
                let g = c * want[i] + o.weight_decay * want[i];
                buf[i] = if t == 0 {
                    g
                } else {
                    o.momentum * buf[i] + (1.0 - o.dampening) * g
                };
                want[i] -= o.lr * buf[i];
            }
            let got: Vec<f64> = Vec::try_from(p.detach()).unwrap();
            for i in 0..2 {
                assert!(
                    (got[i] - want[i]).abs() < 1e-12,
                    "step {t}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn nesterov_and_plain_sgd() {
        let o = SgdOptions {
            lr: 0.05,
            momentum: 0.5,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true,
        };
        let mut sgd = Sgd::new(o, 1).unwrap();
        let mut p = param(&[2.0]);
        let (mut w, mut b) = (2.0f64, 0.0f64);
        for t in 0..3 {
            grad_step(&mut sgd, &mut p, 1.0);
            let g = w;
            b = if t == 0 { g } else { 0.5 * b + g };
            w -= 0.05 * (g + 0.5 * b);
        }
        assert!((p.double_value(&[0]) - w).abs() < 1e-12);

        let plain = SgdOptions {
            momentum: 0.0,
            nesterov: false,
            ..o
        };
        let mut sgd = Sgd::new(plain, 1).unwrap();
        let mut p = param(&[2.0]);
        grad_step(&mut sgd, &mut p, 1.0);
        assert!((p.double_value(&[0]) - (2.0 - 0.05 * 2.0)).abs() < 1e-12);
    }

    #[test]
    fn nesterov_without_momentum_is_refused() {
        let o = SgdOptions {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true,
        };
        assert!(Sgd::new(o, 1).is_err());
    }

    #[test]
    fn gradients_clear_to_none_and_a_parameter_without_one_keeps_its_values() {
        let o = SgdOptions {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.5,
            nesterov: false,
        };
        let mut sgd = Sgd::new(o, 2).unwrap();
        let mut params = [param(&[1.0, 2.0]), param(&[3.0])];
        let mut want = [1.0f64, 2.0];
        let mut buf = [0.0f64; 2];
        for t in 0..3 {
            Sgd::zero_grad(&mut params);
            assert!(
                !params[0].grad().defined(),
                "set to none, as torch's default"
            );
            // Only the first parameter is in the loss; the second gets a gradient on
            // the first step alone (a frozen branch after it), so later steps take
            // the multi-tensor path with one parameter skipped.
            let mut loss = (&params[0] * &params[0]).sum(Kind::Double) * 0.5;
            if t == 0 {
                loss += params[1].sum(Kind::Double);
            }
            loss.backward();
            sgd.step(&params);
            for i in 0..2 {
                let g = want[i] + o.weight_decay * want[i];
                buf[i] = if t == 0 { g } else { o.momentum * buf[i] + g };
                want[i] -= o.lr * buf[i];
            }
            let got: Vec<f64> = Vec::try_from(params[0].detach()).unwrap();
            for i in 0..2 {
                assert!(
                    (got[i] - want[i]).abs() < 1e-12,
                    "step {t}: {got:?} vs {want:?}"
                );
            }
            // Its one step: g = 1 + 0.5 · 3 = 2.5, so 3 − 0.1 · 2.5.
            assert!((params[1].double_value(&[0]) - 2.75).abs() < 1e-12);
        }
    }

    #[test]
    fn a_scaled_step_equals_the_plain_one_and_an_overflow_skips_it() {
        let o = SgdOptions {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.01,
            nesterov: false,
        };
        let loss = |p: &Tensor| (p * p * Tensor::from_slice(&[1.5f64, -0.5])).sum(Kind::Double);
        let (mut plain, mut scaled) = (Sgd::new(o, 1).unwrap(), Sgd::new(o, 1).unwrap());
        scaled.scaler = Some(GradScaler::default());
        let mut p = param(&[0.3, -2.0]);
        let mut q = param(&[0.3, -2.0]);
        for _ in 0..3 {
            Sgd::zero_grad(std::slice::from_mut(&mut p));
            plain.scale_loss(&loss(&p)).backward();
            plain.step(std::slice::from_ref(&p));
            Sgd::zero_grad(std::slice::from_mut(&mut q));
            scaled.scale_loss(&loss(&q)).backward();
            scaled.step(std::slice::from_ref(&q));
        }
        assert!(p.allclose(&q, 1e-12, 1e-12, false), "{p:?} vs {q:?}");
        // An infinite loss gives infinite gradients: no update, the scale halves.
        let before = q.detach().copy();
        Sgd::zero_grad(std::slice::from_mut(&mut q));
        scaled.scale_loss(&(loss(&q) * f64::INFINITY)).backward();
        scaled.step(std::slice::from_ref(&q));
        assert!(q.equal(&before));
        assert_eq!(scaled.scaler.as_ref().unwrap().scale, 32768.0);
    }
}
