//! Training and scoring ReLU MLPs on the CPU in plain Rust, without libtorch's
//! per-operation dispatch and autograd bookkeeping.
//!
//! Why: on a small net (Figure 1's 2-100-100-2 at batch 10) the arithmetic of a
//! libtorch step is a fraction of a percent of its time; the rest is dispatch,
//! allocation and the autograd graph. Here a step is three matrix products forward,
//! five backward and one pass over the parameters, on buffers allocated once.
//!
//! The definitions are the libtorch path's, which are PyTorch's:
//! - `torch.nn.Linear`: y = x Wᵀ + b, W of shape [out, in];
//! - ReLU, and its backward `threshold_backward`: the gradient passes where the
//!   output is > 0;
//! - `F.cross_entropy` with mean reduction: log-softmax (max-shifted) then the
//!   negative log-likelihood; its gradient (softmax − one-hot) / batch;
//! - the SGD update of `train/sgd.rs` (`Sgd::step_host`).
//!
//! All in float32 like libtorch's CPU kernels, with sums of losses in float64 as
//! the run's totals keep them. Products are matrixmultiply's sgemm (FMA where the
//! CPU has it, as MKL); summation order differs from MKL's, so results agree with
//! the libtorch path to rounding, not bit for bit (tests/dense.rs).
//!
//! Used by `train` for `arch: "mlp"` on the CPU with float32 weights and neither
//! autocast nor a gradient scaler; `MINIMA_ENGINE=libtorch` turns it off.

use super::sgd::Sgd;
use crate::data::{Dataset, Part, Split};
use crate::metrics::evaluate::{evaluate, Score, EVAL_BATCH};
use crate::models::{Arch, Model};
use crate::slices::{floats, is_host_float, longs};
use tch::{Device, Kind, Tensor};

/// The environment variable that chooses the engine: `libtorch` turns this one off.
pub const ENGINE_VAR: &str = "MINIMA_ENGINE";

/// Whether mlps on the CPU train here (the default) or through libtorch
/// (`MINIMA_ENGINE=libtorch`); config.json records which as `mlp_engine`.
pub fn enabled() -> bool {
    std::env::var(ENGINE_VAR).map_or(true, |v| v != "libtorch")
}

/// Splits up to this many values (64 MB) are kept materialised: evaluations and
/// un-augmented batches then read them with no tensor operation.
const CACHE_FLOATS: usize = 16 << 20;

/// c = a·b + beta·c for a [m, k] (strides `a_rs`, `a_cs`), b [k, n] (strides
/// `b_rs`, `b_cs`) and dense c [m, n]: matrixmultiply's blocked sgemm, which
/// measured as fast here as hand kernels specialised to a small net's shapes.
fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let reach = |rs: usize, cs: usize, rows: usize, cols: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs + 1
    };
    assert!(a.len() >= reach(a_rs, a_cs, m, k) && b.len() >= reach(b_rs, b_cs, k, n));
    assert!(c.len() >= m * n);
    // Safety: the asserts above keep every index sgemm reads or writes in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Loss sum and correct count of a batch of logits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub loss: f64,
    pub correct: i64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.loss += o.loss;
        self.correct += o.correct;
    }
}

/// Cross-entropy of each row of `logits` [b, classes] against `y`: returns the
/// summed loss and correct count (argmax, first maximum on ties, as torch.argmax);
/// with `grad`, also writes d(mean loss)/d(logits) into it.
fn cross_entropy(logits: &[f32], y: &[i64], classes: usize, mut grad: Option<&mut [f32]>) -> Tally {
    let b = y.len();
    let mut tally = Tally::default();
    for (r, (row, &label)) in logits.chunks_exact(classes).zip(y).enumerate() {
        let (mut best, mut max) = (0, row[0]);
        for (j, &v) in row.iter().enumerate().skip(1) {
            if v > max {
                (best, max) = (j, v);
            }
        }
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        let label = label as usize;
        tally.loss += f64::from(log_sum - (row[label] - max));
        tally.correct += i64::from(best == label);
        if let Some(g) = grad.as_deref_mut() {
            let g = &mut g[r * classes..(r + 1) * classes];
            for (j, (gj, &v)) in g.iter_mut().zip(row).enumerate() {
                let p = (v - max).exp() / sum;
                *gj = (p - if j == label { 1.0 } else { 0.0 }) / b as f32;
            }
        }
    }
    tally
}

/// What a kept split was made from.
#[derive(PartialEq)]
struct SplitKey {
    x: usize,
    y: usize,
    len: i64,
    relabel: Option<crate::data::RandomLabelOptions>,
    inputs: crate::data::Inputs,
}

/// The engine for one model: layer sizes and buffers reused by every step.
pub struct Dense {
    /// inputs, hidden..., classes.
    sizes: Vec<usize>,
    /// Each layer's output for the current batch (after ReLU on hidden layers).
    acts: Vec<Vec<f32>>,
    /// Gradients in the order of the parameters: W0, b0, W1, b1, ...
    grads: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
    /// The training and test splits as model inputs, when small enough to keep.
    cached: [Option<(SplitKey, Split)>; 2],
    batch_x: Vec<f32>,
    batch_y: Vec<i64>,
}

impl Dense {
    /// The engine for `model` when it applies: an mlp on the CPU whose parameters
    /// are contiguous float32 [out, in] and [out] pairs, with the engine not
    /// turned off by `MINIMA_ENGINE=libtorch`.
    pub fn for_model(model: &Model) -> Option<Dense> {
        if model.spec.arch != Arch::Mlp || !enabled() {
            return None;
        }
        let params = model.parameters();
        let mut sizes = vec![model.spec.inputs() as usize];
        for pair in params.chunks(2) {
            let [w, b] = pair else { return None };
            let (ws, bs) = (w.size(), b.size());
            let fits = ws.len() == 2
                && bs == [ws[0]]
                && ws[1] as usize == *sizes.last()?
                && is_host_float(w)
                && is_host_float(b);
            if !fits {
                return None;
            }
            sizes.push(ws[0] as usize);
        }
        if sizes.len() < 2 {
            return None;
        }
        let grads = params.iter().map(|p| vec![0.0; p.numel()]).collect();
        Some(Dense {
            acts: vec![Vec::new(); sizes.len() - 1],
            sizes,
            grads,
            delta: Vec::new(),
            delta_prev: Vec::new(),
            cached: [None, None],
            batch_x: Vec::new(),
            batch_y: Vec::new(),
        })
    }

    fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    fn classes(&self) -> usize {
        *self.sizes.last().expect("at least two sizes")
    }

    /// Forward pass of `b` rows of `x` into `self.acts`.
    fn forward(&mut self, params: &[Tensor], x: &[f32], b: usize) {
        let layers = self.layers();
        for l in 0..layers {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            // Safety: parameters are contiguous CPU floats (checked in for_model)
            // and only read here.
            let (w, bias) = unsafe { (floats(&params[2 * l]), floats(&params[2 * l + 1])) };
            let (before, rest) = self.acts.split_at_mut(l);
            let out = &mut rest[0];
            out.resize(b * n_out, 0.0);
            for row in out.chunks_exact_mut(n_out) {
                row.copy_from_slice(bias);
            }
            let input = if l == 0 {
                x
            } else {
                &before[l - 1][..b * n_in]
            };
            // out += input · Wᵀ: Wᵀ[i, o] = W[o, i] at strides (1, n_in).
            gemm((b, n_in, n_out), input, (n_in, 1), w, (1, n_in), 1.0, out);
            if l + 1 < layers {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }

    /// One SGD step on `b` rows of inputs `x` with labels `y`.
    pub fn step(&mut self, params: &[Tensor], sgd: &mut Sgd, x: &[f32], y: &[i64]) -> Tally {
        let b = y.len();
        self.forward(params, x, b);
        let classes = self.classes();
        self.delta.resize(b * classes, 0.0);
        let tally = cross_entropy(
            &self.acts[self.layers() - 1],
            y,
            classes,
            Some(&mut self.delta),
        );
        for l in (0..self.layers()).rev() {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let input: &[f32] = if l == 0 {
                x
            } else {
                &self.acts[l - 1][..b * n_in]
            };
            let (gw, rest) = self.grads[2 * l..].split_at_mut(1);
            // dW = deltaᵀ · input: deltaᵀ[o, r] = delta[r, o] at strides (1, n_out).
            gemm(
                (n_out, b, n_in),
                &self.delta,
                (1, n_out),
                input,
                (n_in, 1),
                0.0,
                &mut gw[0],
            );
            let gb = &mut rest[0];
            gb.iter_mut().for_each(|v| *v = 0.0);
            for row in self.delta.chunks_exact(n_out) {
                gb.iter_mut().zip(row).for_each(|(g, d)| *g += d);
            }
            if l > 0 {
                // Safety: as in forward.
                let w = unsafe { floats(&params[2 * l]) };
                self.delta_prev.resize(b * n_in, 0.0);
                // delta_prev = delta · W.
                gemm(
                    (b, n_out, n_in),
                    &self.delta,
                    (n_out, 1),
                    w,
                    (n_in, 1),
                    0.0,
                    &mut self.delta_prev,
                );
                for (d, &a) in self.delta_prev.iter_mut().zip(input) {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                }
                std::mem::swap(&mut self.delta, &mut self.delta_prev);
            }
        }
        sgd.step_host(params, &mut self.grads);
        tally
    }

    /// One step on the `len` training examples at `order[start..start + len]`
    /// without augmentation, gathered on the host from the training split kept
    /// materialised (no tensor operation per step). `None` when the split is too
    /// large to keep or not float32 (the caller then takes `step_on`).
    #[allow(clippy::too_many_arguments)]
    pub fn step_rows(
        &mut self,
        params: &[Tensor],
        sgd: &mut Sgd,
        data: &Dataset,
        order: &Tensor,
        start: i64,
        len: i64,
    ) -> Option<Tally> {
        if order.kind() != Kind::Int64 || order.device() != Device::Cpu || !order.is_contiguous() {
            return None;
        }
        let split = self.cache(data, Part::Train)?;
        let width = self.sizes[0];
        let (mut x, mut y) = (
            std::mem::take(&mut self.batch_x),
            std::mem::take(&mut self.batch_y),
        );
        x.clear();
        y.clear();
        // Safety: `order` is checked above; cached splits are contiguous CPU
        // float inputs and int64 labels (checked by `cache`); all only read here.
        let (index, xs, ys) = unsafe { (longs(order), floats(&split.x), longs(&split.y)) };
        let rows = ys.len();
        for &i in &index[start as usize..(start + len) as usize] {
            let i = i.rem_euclid(rows as i64) as usize;
            x.extend_from_slice(&xs[i * width..(i + 1) * width]);
            y.push(ys[i]);
        }
        let tally = self.step(params, sgd, &x, &y);
        (self.batch_x, self.batch_y) = (x, y);
        Some(tally)
    }

    /// The whole split as model inputs, materialised on first use when it has at
    /// most `CACHE_FLOATS` values and is float32 (as the libtorch path makes them:
    /// the same rows `train_batch` gathers, un-augmented). Kept while the split's
    /// storage, length, relabelling and normalisation stay the same.
    fn cache(&mut self, data: &Dataset, part: Part) -> Option<Split> {
        let (slot, split) = match part {
            Part::Train => (0, &data.train),
            Part::Test => (1, &data.test),
        };
        let (x_at, y_at, len) = (
            split.x.data_ptr() as usize,
            split.y.data_ptr() as usize,
            data.len(part),
        );
        // Compared in place: this runs every step, so no key is built unless kept.
        let same = |k: &SplitKey| {
            (k.x, k.y, k.len) == (x_at, y_at, len)
                && k.relabel == data.relabel
                && k.inputs == data.inputs
        };
        if self.cached[slot].as_ref().is_some_and(|(k, _)| !same(k)) {
            self.cached[slot] = None;
        }
        let size = data.len(part) as usize * data.input_size() as usize;
        if self.cached[slot].is_none() && size <= CACHE_FLOATS && data.device() == Device::Cpu {
            let whole = data.materialize(part);
            let (x, y) = (whole.x.contiguous(), whole.y.contiguous());
            if is_host_float(&x) && y.kind() == Kind::Int64 {
                let key = SplitKey {
                    x: x_at,
                    y: y_at,
                    len,
                    relabel: data.relabel,
                    inputs: data.inputs.clone(),
                };
                self.cached[slot] = Some((key, Split { x, y }));
            }
        }
        self.cached[slot].as_ref().map(|(_, s)| Split {
            x: s.x.shallow_clone(),
            y: s.y.shallow_clone(),
        })
    }

    /// One step on a batch given as tensors (CPU, float inputs, int64 labels);
    /// `None` when they are not, so the caller takes the libtorch step.
    pub fn step_on(&mut self, params: &[Tensor], sgd: &mut Sgd, batch: &Split) -> Option<Tally> {
        let x = batch.x.contiguous();
        let y = batch.y.contiguous();
        if !is_host_float(&x) || y.kind() != Kind::Int64 || y.device() != Device::Cpu {
            return None;
        }
        // Safety: checked just above; the batch tensors are not written meanwhile.
        let (xs, ys) = unsafe { (floats(&x), longs(&y)) };
        Some(self.step(params, sgd, xs, ys))
    }

    /// Mean loss and accuracy on a split, as `metrics::evaluate` (which it falls
    /// back to off the CPU or for inputs that are not float32); an mlp has no
    /// layer that differs between train and eval mode.
    pub fn evaluate(&mut self, model: &Model, data: &Dataset, part: Part) -> Score {
        let n = data.len(part);
        if n == 0 || data.device() != Device::Cpu {
            return evaluate(model, data, part);
        }
        let params = &model.parameters();
        let mut tally = Tally::default();
        let classes = self.classes();
        let mut score = |dense: &mut Dense, batch: &Split| {
            let x = batch.x.contiguous();
            if !is_host_float(&x) || batch.y.kind() != Kind::Int64 {
                return false;
            }
            // Safety: checked just above; batches are not written meanwhile.
            let (xs, ys) = unsafe { (floats(&x), longs(&batch.y)) };
            for (xb, yb) in xs
                .chunks(EVAL_BATCH as usize * dense.sizes[0])
                .zip(ys.chunks(EVAL_BATCH as usize))
            {
                dense.forward(params, xb, yb.len());
                tally += cross_entropy(&dense.acts[dense.layers() - 1], yb, classes, None);
            }
            true
        };
        let scored = match self.cache(data, part) {
            Some(split) => score(self, &split),
            None => data.batches(part, EVAL_BATCH).all(|batch| {
                let batch = Split {
                    x: batch.x,
                    y: batch.y.contiguous(),
                };
                score(self, &batch)
            }),
        };
        if !scored {
            return evaluate(model, data, part);
        }
        let n = n as f64;
        Score {
            loss: tally.loss / n,
            acc: tally.correct as f64 / n,
        }
    }
}
