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

mod crop;
mod pass;
mod pixels;

use super::sgd::Sgd;
use crate::data::{Augmentation, Dataset, Inputs, Part, Split};
use crate::metrics::evaluate::{evaluate, Score, EVAL_BATCH};
use crate::models::{Arch, Model};
use crate::slices::{floats, is_host_float, longs};
pub use pass::Tally;
use pass::{across, chunks, Pass};
use pixels::Pixels;
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

/// What a kept split was made from.
#[derive(PartialEq)]
struct SplitKey {
    x: usize,
    y: usize,
    len: i64,
    relabel: Option<crate::data::RandomLabelOptions>,
    inputs: crate::data::Inputs,
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
    /// Splits of at most this many values are kept (`CACHE_FLOATS`); larger
    /// ones are gathered from their stored pixels where they can be.
    keep_limit: usize,
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
            keep_limit: CACHE_FLOATS,
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

    /// The engine keeping splits of at most `values` values (tests: 0 sends
    /// every batch of stored pixels through the host gather).
    pub fn with_keep_limit(mut self, values: usize) -> Dense {
        self.keep_limit = values;
        self.cached = [None, None];
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

    /// One step on the `len` training examples at `order[start..start + len]`,
    /// gathered on the host from the training split kept materialised (no tensor
    /// operation per step). With `augment_seed`, images get SOTA's crop and flip
    /// there too (`crop`), the batch `train_batch` would make. `None` when the
    /// split is too large to keep or not float32, or the augmentation is not
    /// crop+flip of images (the caller then takes `step_on`).
    #[allow(clippy::too_many_arguments)]
    pub fn step_rows(
        &mut self,
        params: &[Tensor],
        sgd: &mut Sgd,
        data: &Dataset,
        order: &Tensor,
        (start, len): (i64, i64),
        augment_seed: Option<i64>,
    ) -> Option<Tally> {
        if order.kind() != Kind::Int64 || order.device() != Device::Cpu || !order.is_contiguous() {
            return None;
        }
        let crop = match (augment_seed, &data.augmentation, &data.inputs) {
            (None, ..) => None,
            (Some(seed), &Augmentation::CropFlip { pad }, Inputs::Images { mean, std }) => {
                let &[c, h, w] = data.input_shape().as_slice() else {
                    return None;
                };
                let shape = [c as usize, h as usize, w as usize];
                Some((
                    shape,
                    pad,
                    crop::fill(mean, std),
                    crop::draw(seed, len, pad),
                ))
            }
            _ => return None,
        };
        let kept = self.cache(data, Part::Train);
        // Un-augmented batches of a split too large to keep measured slower
        // gathered here than by libtorch (docs/PERFORMANCE.md): they take its path.
        let pixels = match (&kept, &crop) {
            (Some(_), _) => None,
            (None, Some(_)) => Some(Pixels::of(data)?),
            (None, None) => return None,
        };
        let width = self.sizes[0];
        let (mut x, mut y) = (
            std::mem::take(&mut self.batch_x),
            std::mem::take(&mut self.batch_y),
        );
        x.clear();
        y.clear();
        // Filled only for rows read from stored pixels.
        let mut row = Vec::new();
        // Safety: `order` is checked above; kept splits are contiguous CPU float
        // inputs and int64 labels (checked by `cache`), stored pixels contiguous
        // CPU uint8 and int64 labels (checked by `Pixels::of`); all only read here.
        let (index, xs, ys) = unsafe {
            match (&kept, &pixels) {
                (Some(split), _) => (longs(order), floats(&split.x), longs(&split.y)),
                (None, Some(p)) => (longs(order), &[][..], p.labels()),
                (None, None) => return None,
            }
        };
        let rows = ys.len();
        for (k, &i) in index[start as usize..(start + len) as usize]
            .iter()
            .enumerate()
        {
            let i = i.rem_euclid(rows as i64) as usize;
            let image = match &pixels {
                Some(p) => {
                    p.inputs(i, &mut row);
                    &row[..]
                }
                None => &xs[i * width..(i + 1) * width],
            };
            match &crop {
                Some((shape, pad, fill, draws)) => {
                    crop::push(&mut x, image, (shape, *pad, fill), draws, k)
                }
                None => x.extend_from_slice(image),
            }
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
        if self.cached[slot].is_none() && size <= self.keep_limit && data.device() == Device::Cpu {
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
