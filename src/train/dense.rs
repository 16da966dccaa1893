//! Training and scoring ReLU MLPs on the CPU in plain Rust, without libtorch's
//! per-operation dispatch and autograd bookkeeping.
//!
//! Why: on a small net (Figure 1's 2-100-100-2 at batch 10) the arithmetic of a
//! libtorch step is a fraction of a percent of its time; the rest is dispatch,
//! allocation and the autograd graph. Here a step is three matrix products forward,
//! five backward and one pass over the parameters, on buffers allocated once.
//! A batch large enough is split by rows across torch's intra-op thread count, as
//! libtorch splits its products: at batch 128 the mlp's step is sgemm-bound, so
//! one thread leaves the second core idle.
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
//! the libtorch path to rounding, not bit for bit (tests/dense.rs). The threads'
//! gradients are summed in a fixed order: a run repeats bit for bit at a given
//! thread count.
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
/// with `grad` = (g, batch), also writes into g these rows' d(mean loss)/d(logits)
/// for the mean over a batch of `batch` rows (these rows or more).
fn cross_entropy(
    logits: &[f32],
    y: &[i64],
    classes: usize,
    mut grad: Option<(&mut [f32], usize)>,
) -> Tally {
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
        if let Some((g, b)) = grad.as_mut() {
            let b = *b;
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

/// Batches of at least this many rows per thread are split across threads: below
/// it a thread's share costs less than starting it (Figure 1's batches of 10 stay
/// on one thread).
const ROWS_PER_THREAD: usize = 32;

/// One thread's share of a batch: its rows' activations and its gradients.
#[derive(Default)]
struct Pass {
    /// Each layer's output for the rows (after ReLU on hidden layers).
    acts: Vec<Vec<f32>>,
    /// Gradients in the order of the parameters: W0, b0, W1, b1, ...
    grads: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
}

impl Pass {
    fn new(sizes: &[usize]) -> Pass {
        let grads = sizes
            .windows(2)
            .flat_map(|io| [vec![0.0; io[0] * io[1]], vec![0.0; io[1]]])
            .collect();
        Pass {
            acts: vec![Vec::new(); sizes.len() - 1],
            grads,
            ..Pass::default()
        }
    }

    /// Forward pass of `b` rows of `x` into `self.acts`; `params` as W0, b0, ...
    fn forward(&mut self, sizes: &[usize], params: &[&[f32]], x: &[f32], b: usize) {
        let layers = sizes.len() - 1;
        for l in 0..layers {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
            let (w, bias) = (params[2 * l], params[2 * l + 1]);
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

    /// Loss sum and correct count of the rows `x` with labels `y`, after `forward`.
    fn score(&mut self, sizes: &[usize], params: &[&[f32]], x: &[f32], y: &[i64]) -> Tally {
        self.forward(sizes, params, x, y.len());
        let classes = sizes[sizes.len() - 1];
        cross_entropy(&self.acts[sizes.len() - 2], y, classes, None)
    }

    /// Forward and backward pass of the rows `x` with labels `y`: their share of
    /// the gradient of the mean loss over a batch of `batch` rows, into `self.grads`.
    fn gradients(
        &mut self,
        sizes: &[usize],
        params: &[&[f32]],
        (x, y): (&[f32], &[i64]),
        batch: usize,
    ) -> Tally {
        let b = y.len();
        let layers = sizes.len() - 1;
        self.forward(sizes, params, x, b);
        let classes = sizes[layers];
        self.delta.resize(b * classes, 0.0);
        let tally = cross_entropy(
            &self.acts[layers - 1],
            y,
            classes,
            Some((&mut self.delta, batch)),
        );
        for l in (0..layers).rev() {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
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
                self.delta_prev.resize(b * n_in, 0.0);
                // delta_prev = delta · W.
                gemm(
                    (b, n_out, n_in),
                    &self.delta,
                    (n_out, 1),
                    params[2 * l],
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
        tally
    }
}

/// How many of `threads` threads share a batch of `rows` rows.
fn chunks(threads: usize, rows: usize) -> usize {
    threads.min(rows / ROWS_PER_THREAD).max(1)
}

/// Runs `work` on consecutive row ranges of a `rows`-row batch, one per pass, the
/// first on this thread and the others on scoped threads; tallies summed in order.
fn across<F>(passes: &mut [Pass], rows: usize, work: F) -> Tally
where
    F: Fn(&mut Pass, std::ops::Range<usize>) -> Tally + Sync,
{
    let chunks = chunks(passes.len(), rows);
    let range = |k: usize| k * rows / chunks..(k + 1) * rows / chunks;
    let (first, others) = passes[..chunks].split_at_mut(1);
    if others.is_empty() {
        return work(&mut first[0], range(0));
    }
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = others
            .iter_mut()
            .enumerate()
            .map(|(k, pass)| s.spawn(move || work(pass, range(k + 1))))
            .collect();
        let mut tally = work(&mut first[0], range(0));
        for h in handles {
            tally += h.join().expect("a dense-engine thread does not panic");
        }
        tally
    })
}

/// libtorch held at one intra-op thread while the engine's own threads train:
/// its OpenMP workers keep spinning for a while after each parallel op (a batch
/// gather, the augmentation), taking the core the engine's second thread needs
/// (docs/PERFORMANCE.md). Dropping it restores the count. torch's count is per
/// OS thread (OpenMP's), so this holds on the thread that made the engine.
struct OneTorchThread(i32);

impl OneTorchThread {
    fn hold() -> OneTorchThread {
        let before = tch::get_num_threads();
        tch::set_num_threads(1);
        OneTorchThread(before)
    }
}

impl Drop for OneTorchThread {
    fn drop(&mut self) {
        tch::set_num_threads(self.0);
    }
}

/// The engine for one model: layer sizes and buffers reused by every step.
pub struct Dense {
    /// inputs, hidden..., classes.
    sizes: Vec<usize>,
    /// One per thread the engine uses (torch's intra-op thread count): a batch of
    /// `ROWS_PER_THREAD` rows or more per thread is split between them and their
    /// gradients summed, in a fixed order, into the first's.
    passes: Vec<Pass>,
    /// Set while the engine uses more than one thread.
    torch: Option<OneTorchThread>,
    /// The training and test splits as model inputs, when small enough to keep.
    cached: [Option<(SplitKey, Split)>; 2],
    batch_x: Vec<f32>,
    batch_y: Vec<i64>,
}

impl Dense {
    /// The engine for `model` when it applies: an mlp on the CPU whose parameters
    /// are contiguous float32 [out, in] and [out] pairs, with the engine not
    /// turned off by `MINIMA_ENGINE=libtorch`. It uses as many threads as torch.
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
        let threads = tch::get_num_threads().max(1) as usize;
        let dense = Dense {
            passes: Vec::new(),
            torch: None,
            sizes,
            cached: [None, None],
            batch_x: Vec::new(),
            batch_y: Vec::new(),
        };
        Some(dense.with_threads(threads))
    }

    /// The engine on `threads` threads instead of torch's intra-op count; with
    /// more than one, libtorch runs on one thread until the engine is dropped.
    pub fn with_threads(mut self, threads: usize) -> Dense {
        let threads = threads.max(1);
        self.passes = (0..threads).map(|_| Pass::new(&self.sizes)).collect();
        if threads == 1 {
            self.torch = None;
        } else if self.torch.is_none() {
            self.torch = Some(OneTorchThread::hold());
        }
        self
    }

    /// One SGD step on `b` rows of inputs `x` with labels `y`.
    pub fn step(&mut self, params: &[Tensor], sgd: &mut Sgd, x: &[f32], y: &[i64]) -> Tally {
        let (b, width, sizes) = (y.len(), self.sizes[0], &self.sizes[..]);
        let tally = {
            // Safety: parameters are contiguous CPU floats (checked in for_model),
            // only read until these slices are dropped, before the update.
            let weights: Vec<&[f32]> = params.iter().map(|p| unsafe { floats(p) }).collect();
            let weights = &weights[..];
            across(&mut self.passes, b, |pass, rows| {
                let rows_x = &x[rows.start * width..rows.end * width];
                pass.gradients(sizes, weights, (rows_x, &y[rows]), b)
            })
        };
        let used = chunks(self.passes.len(), b);
        let (first, others) = self.passes.split_at_mut(1);
        for other in &others[..used - 1] {
            for (g, o) in first[0].grads.iter_mut().zip(&other.grads) {
                g.iter_mut().zip(o).for_each(|(g, o)| *g += o);
            }
        }
        sgd.step_host(params, &mut first[0].grads);
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
        let params = model.parameters();
        // Safety: the model's parameters are contiguous CPU floats (checked in
        // for_model) and nothing writes to them while the model is scored.
        let weights: Vec<&[f32]> = params.iter().map(|p| unsafe { floats(p) }).collect();
        let mut tally = Tally::default();
        let mut score = |dense: &mut Dense, batch: &Split| {
            let x = batch.x.contiguous();
            if !is_host_float(&x) || batch.y.kind() != Kind::Int64 {
                return false;
            }
            // Safety: checked just above; batches are not written meanwhile.
            let (xs, ys) = unsafe { (floats(&x), longs(&batch.y)) };
            let Dense { sizes, passes, .. } = dense;
            let (sizes, width, weights) = (&sizes[..], sizes[0], &weights[..]);
            for (xb, yb) in xs
                .chunks(EVAL_BATCH as usize * width)
                .zip(ys.chunks(EVAL_BATCH as usize))
            {
                tally += across(passes, yb.len(), |pass, rows| {
                    let rows_x = &xb[rows.start * width..rows.end * width];
                    pass.score(sizes, weights, rows_x, &yb[rows])
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_shared_only_when_each_thread_gets_enough_rows() {
        assert_eq!(chunks(2, 128), 2);
        assert_eq!(chunks(2, 63), 1);
        assert_eq!(chunks(2, 10), 1, "Figure 1's batches stay on one thread");
        assert_eq!(chunks(4, 100), 3);
        assert_eq!(chunks(1, 1000), 1);
    }

    #[test]
    fn the_threads_cover_every_row_once() {
        let mut passes: Vec<Pass> = (0..3).map(|_| Pass::new(&[2, 2])).collect();
        let seen = std::sync::Mutex::new(vec![0; 128]);
        let tally = across(&mut passes, 128, |_, rows| {
            let mut seen = seen.lock().unwrap();
            rows.clone().for_each(|r| seen[r] += 1);
            Tally {
                loss: rows.len() as f64,
                correct: 1,
            }
        });
        assert_eq!(tally.loss, 128.0);
        assert_eq!(tally.correct, 3, "three chunks");
        assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1));
    }
}
