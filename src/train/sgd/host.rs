//! torch.optim.SGD's update on host slices, for the dense engine
//! (train/dense/): the same floats as the shim's tensor operations, which
//! libtorch's vectorised CPU kernels compute with a fused multiply-add per
//! `add(other, alpha)` where the CPU has AVX2 and FMA.

use super::{Sgd, SgdOptions};
use tch::Tensor;

impl Sgd {
    /// The same update for contiguous CPU float32 parameters whose gradients the
    /// dense engine (train/dense/) holds on the host, on this thread; `grads` is
    /// used as scratch. When the engine's threads shared a batch they share the
    /// update too, each a stretch of `SgdOptions::update_host`
    /// (train/dense/update.rs).
    pub fn step_host(&mut self, params: &[Tensor], grads: &mut [Vec<f32>]) {
        let options = self.options;
        let buffers = self.host_buffers(params);
        for ((p, g), buffer) in params.iter().zip(grads).zip(buffers) {
            // Safety: the dense engine only runs on contiguous CPU float tensors,
            // and no other slice of this parameter lives during the update.
            let values = unsafe { crate::slices::floats_mut(p) };
            options.update_host(values, g, buffer);
        }
    }

    /// Each parameter's momentum buffer as host floats for `update_host`, made
    /// on the first step (zeros, which that step overwrites) and converted to
    /// contiguous CPU float32 where a checkpoint left it otherwise; `None` for
    /// each parameter without momentum. Buffers stay tensors, so checkpoints are
    /// the same whichever path stepped.
    pub fn host_buffers(&mut self, params: &[Tensor]) -> Vec<Option<HostBuffer<'_>>> {
        if self.options.momentum == 0.0 {
            return params.iter().map(|_| None).collect();
        }
        self.buffers
            .iter_mut()
            .zip(params)
            .map(|(buffer, p)| {
                let first = buffer.is_none();
                let b = match buffer {
                    Some(b) => {
                        if !crate::slices::is_host_float(b) {
                            *b = b.to_kind(tch::Kind::Float).contiguous();
                        }
                        b
                    }
                    None => buffer.insert(Tensor::zeros(
                        p.size(),
                        (tch::Kind::Float, tch::Device::Cpu),
                    )),
                };
                // Safety: a contiguous CPU float tensor (made so just above: the
                // model, and so the checkpoint it came from, is on the CPU),
                // borrowed mutably with the optimiser.
                let values = unsafe { crate::slices::floats_mut(b) };
                Some(HostBuffer { values, first })
            })
            .collect()
    }
}

/// A stretch of a momentum buffer on the host, and whether this is its first
/// step (the buffer then becomes the gradient, undampened).
pub struct HostBuffer<'a> {
    pub values: &'a mut [f32],
    pub first: bool,
}

impl SgdOptions {
    /// The update of `step` on a stretch of one parameter's `values` with its
    /// gradient `g` (used as scratch) and momentum `buffer`, element by element
    /// as the shim's tensor operations compute it, in float32. Each element's
    /// arithmetic involves that element alone, so a parameter may be updated in
    /// stretches.
    pub fn update_host(&self, values: &mut [f32], g: &mut [f32], buffer: Option<HostBuffer>) {
        // libtorch's vectorised CPU kernels compute `add(other, alpha)` as a
        // fused multiply-add where the CPU has AVX2 and FMA (its AVX2 and
        // AVX-512 builds; its baseline build multiplies, then adds).
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // Safety: the CPU has AVX2 and FMA.
                return unsafe { self.update_host_fused(values, g, buffer) };
            }
            self.rule::<false>(values, g, buffer)
        }
        // Elsewhere (aarch64) FMA is part of the baseline, and libtorch fuses.
        #[cfg(not(target_arch = "x86_64"))]
        self.rule::<true>(values, g, buffer)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn update_host_fused(
        &self,
        values: &mut [f32],
        g: &mut [f32],
        buffer: Option<HostBuffer>,
    ) {
        self.rule::<true>(values, g, buffer)
    }

    /// The shim's operations, where `add(self, other, alpha)` is
    /// other·alpha + self, fused or not.
    #[inline(always)]
    fn rule<const FUSED: bool>(
        &self,
        values: &mut [f32],
        g: &mut [f32],
        buffer: Option<HostBuffer>,
    ) {
        let add = |s: f32, other: f32, alpha: f32| {
            if FUSED {
                other.mul_add(alpha, s)
            } else {
                s + other * alpha
            }
        };
        let (lr, momentum, wd) = (
            self.lr as f32,
            self.momentum as f32,
            self.weight_decay as f32,
        );
        let keep = (1.0 - self.dampening) as f32;
        if wd != 0.0 {
            g.iter_mut()
                .zip(&*values)
                .for_each(|(g, &p)| *g = add(*g, p, wd));
        }
        match buffer {
            Some(HostBuffer {
                values: b,
                first: true,
            }) => {
                b.copy_from_slice(g);
                if self.nesterov {
                    g.iter_mut().for_each(|g| *g = add(*g, *g, momentum));
                }
            }
            Some(HostBuffer {
                values: b,
                first: false,
            }) => {
                for (b, g) in b.iter_mut().zip(g.iter_mut()) {
                    *b = add(*b * momentum, *g, keep);
                    *g = if self.nesterov {
                        add(*g, *b, momentum)
                    } else {
                        *b
                    };
                }
            }
            None => {}
        }
        values
            .iter_mut()
            .zip(&*g)
            .for_each(|(p, &d)| *p = add(*p, d, -lr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// PyTorch's CPU update in float32, written out here: `add(s, other, alpha)`
    /// is other·alpha + s rounded once where libtorch's kernels fuse it (a CPU
    /// with AVX2 and FMA), twice elsewhere.
    fn torch_float_rule(o: &SgdOptions, p: &mut [f32], b: &mut Option<Vec<f32>>, g: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        let fused = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let fused = true;
        let add = |s: f32, other: f32, alpha: f32| {
            if fused {
                other.mul_add(alpha, s)
            } else {
                s + other * alpha
            }
        };
        let (lr, m, wd) = (o.lr as f32, o.momentum as f32, o.weight_decay as f32);
        let keep = (1.0 - o.dampening) as f32;
        let mut d: Vec<f32> = g
            .iter()
            .zip(&*p)
            .map(|(&g, &p)| if wd != 0.0 { add(g, p, wd) } else { g })
            .collect();
        if m != 0.0 {
            let buf = match b {
                None => b.insert(d.clone()),
                Some(buf) => {
                    buf.iter_mut()
                        .zip(&d)
                        .for_each(|(b, &d)| *b = add(*b * m, d, keep));
                    buf
                }
            };
            for (d, &b) in d.iter_mut().zip(buf.iter()) {
                *d = if o.nesterov { add(*d, b, m) } else { b };
            }
        }
        p.iter_mut()
            .zip(&d)
            .for_each(|(p, &d)| *p = add(*p, d, -lr));
    }

    /// Float32 steps through libtorch (`step`, first step included) and on the
    /// host (`step_host`) against the rule above, bit for bit, for every variant.
    #[test]
    fn float_steps_are_torchs_bit_for_bit_on_both_paths() {
        let variants = [
            (0.0, 0.0, 0.0, false),
            (0.9, 5e-4, 0.0, false),
            (0.9, 0.1, 0.1, false),
            (0.5, 1e-3, 0.0, true),
        ];
        for (momentum, weight_decay, dampening, nesterov) in variants {
            let o = SgdOptions {
                lr: 0.1,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            };
            let n = 1003;
            let (start, grads) = crate::rng::seeded(3, || {
                let draw = || Tensor::randn([n], (Kind::Float, tch::Device::Cpu));
                (draw(), [draw(), draw(), draw(), draw()])
            });
            let mut want = Vec::<f32>::try_from(&start).unwrap();
            let mut want_buffer = None;
            let torch = start.copy().set_requires_grad(true);
            let host = start.copy();
            let (mut on_torch, mut on_host) = (Sgd::new(o, 1).unwrap(), Sgd::new(o, 1).unwrap());
            for (step, g) in grads.iter().enumerate() {
                let gv = Vec::<f32>::try_from(g).unwrap();
                torch_float_rule(&o, &mut want, &mut want_buffer, &gv);
                let mut torch = torch.shallow_clone();
                Sgd::zero_grad(std::slice::from_mut(&mut torch));
                (&torch * g).sum(Kind::Float).backward();
                on_torch.step(std::slice::from_ref(&torch));
                on_host.step_host(std::slice::from_ref(&host), &mut [gv]);
                let want_t = Tensor::from_slice(&want);
                assert!(
                    torch.detach().equal(&want_t),
                    "{o:?} step {step}: libtorch's step"
                );
                assert!(host.equal(&want_t), "{o:?} step {step}: the host step");
            }
            assert!(!host.equal(&start));
        }
    }
}
