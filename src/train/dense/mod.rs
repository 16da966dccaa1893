//! Training and scoring ReLU MLPs on the CPU in plain Rust, without libtorch's
//! per-operation dispatch and autograd bookkeeping.
//!
//! Why: on a small net (Figure 1's 2-100-100-2 at batch 10) the arithmetic of a
//! libtorch step is a fraction of a percent of its time; the rest is dispatch,
//! allocation and the autograd graph. Here a step is three matrix products forward,
//! five backward and one pass over the parameters, on buffers allocated once.
//! A batch large enough is split by rows across torch's intra-op thread count, as
//! libtorch splits its products: at batch 128 the mlp's step is sgemm-bound, so
//! one thread leaves the second core idle. The threads are kept for the engine's
//! lifetime (`crew`) and each gathers its own rows of the batch.
//!
//! The definitions are the libtorch path's, which are PyTorch's:
//! - `torch.nn.Linear`: y = x Wᵀ + b, W of shape [out, in];
//! - ReLU, and its backward `threshold_backward`: the gradient passes where the
//!   output is > 0;
//! - `F.cross_entropy` with mean reduction: log-softmax (max-shifted) then the
//!   negative log-likelihood; its gradient (softmax − one-hot) / batch;
//! - the SGD update of `train/sgd.rs` (`SgdOptions::update_host`).
//!
//! All in float32 like libtorch's CPU kernels, with sums of losses in float64 as
//! the run's totals keep them. Products are matrixmultiply's sgemm (FMA where the
//! CPU has it, as MKL), small ones a kernel with sgemm's floats (`products`); summation order differs from MKL's, so results agree with
//! the libtorch path to rounding, not bit for bit (tests/dense.rs). The threads'
//! gradients are summed in a fixed order: a run repeats bit for bit at a given
//! thread count.
//!
//! Used by `train` for `arch: "mlp"` on the CPU with float32 weights and neither
//! autocast nor a gradient scaler; `MINIMA_ENGINE=libtorch` turns it off.

mod crew;
mod pass;
mod pixels;
mod products;
mod update;

use super::sgd::Sgd;
use crate::data::{crop, Augmentation, Dataset, Inputs, Part, Split};
use crate::metrics::evaluate::{evaluate, Score, EVAL_BATCH};
use crate::models::{Arch, Model};
use crate::slices::{floats, is_host_float, longs};
use crew::Crew;
pub use pass::Tally;
use pass::{across, chunks, Pass};
use pixels::{prefetch, Pixels};
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
    /// The threads besides the caller's, one per pass after the first.
    crew: Crew,
    /// Set while the engine uses more than one thread.
    torch: Option<OneTorchThread>,
    /// The training and test splits as model inputs, when small enough to keep.
    cached: [Option<(SplitKey, Split)>; 2],
    /// Splits of at most this many values are kept (`CACHE_FLOATS`); larger
    /// ones are gathered from their stored pixels where they can be.
    keep_limit: usize,
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
            crew: Crew::new(0),
        };
        Some(dense.with_threads(threads))
    }

    /// The engine on `threads` threads instead of torch's intra-op count; with
    /// more than one, libtorch runs on one thread until the engine is dropped.
    pub fn with_threads(mut self, threads: usize) -> Dense {
        let threads = threads.max(1);
        self.passes = (0..threads).map(|_| Pass::new(&self.sizes)).collect();
        self.crew = Crew::new(threads - 1);
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
            across(&self.crew, &mut self.passes, b, |pass, rows| {
                let rows_x = &x[rows.start * width..rows.end * width];
                pass.gradients(sizes, weights, (rows_x, &y[rows]), b)
            })
        };
        self.update(params, sgd, b);
        tally
    }

    /// Sums the passes' gradients of a `b`-row batch into the first's, in a fixed
    /// order, and takes the SGD step with them (`update`).
    fn update(&mut self, params: &[Tensor], sgd: &mut Sgd, b: usize) {
        let used = chunks(self.passes.len(), b);
        update::update(&self.crew, &mut self.passes, used, params, sgd);
    }

    /// One step on the `len` training examples at `order[start..start + len]`,
    /// gathered on the host (no tensor operation per step) from the training
    /// split kept materialised or, when it is too large to keep, from its stored
    /// pixels, each thread gathering its own rows. With `augment_seed`, images
    /// get SOTA's crop and flip there too (`crop`): the batch `train_batch`
    /// would make. `None` when the split can be read neither way (a random-label
    /// view too large to keep, inputs that are not images) or the augmentation
    /// is not crop+flip of images (the caller then takes `step_on`).
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
                    crate::rng::seeded(seed, || crop::draw(len, pad)),
                ))
            }
            _ => return None,
        };
        let kept = self.cache(data, Part::Train);
        let pixels = match &kept {
            Some(_) => None,
            None => Some(Pixels::of(data)?),
        };
        let (width, b) = (self.sizes[0], len as usize);
        // Safety: `order` is checked above; kept splits are contiguous CPU float
        // inputs and int64 labels (checked by `cache`), stored pixels contiguous
        // CPU uint8 and int64 labels (checked by `Pixels::of`); all only read here.
        // Parameters are contiguous CPU floats (checked in `for_model`), only read
        // until these slices are dropped, before the update.
        let (index, xs, ys, weights) = unsafe {
            let index = &longs(order)[start as usize..start as usize + b];
            let weights: Vec<&[f32]> = params.iter().map(|p| floats(p)).collect();
            match (&kept, &pixels) {
                (Some(split), _) => (index, floats(&split.x), longs(&split.y), weights),
                (None, Some(p)) => (index, &[][..], p.labels(), weights),
                (None, None) => return None,
            }
        };
        let (sizes, n) = (&self.sizes[..], ys.len() as i64);
        let slices = &weights[..];
        // Each thread gathers (and crops) its own rows, then trains on them.
        let tally = across(&self.crew, &mut self.passes, b, |pass, rows| {
            let (mut x, mut y, mut row) = (
                std::mem::take(&mut pass.x),
                std::mem::take(&mut pass.y),
                std::mem::take(&mut pass.row),
            );
            x.clear();
            y.clear();
            for k in rows.clone() {
                let i = index[k].rem_euclid(n) as usize;
                if k + 1 < rows.end {
                    let next = index[k + 1].rem_euclid(n) as usize;
                    match &pixels {
                        Some(p) => prefetch(p.image(next)),
                        None => prefetch(&xs[next * width..(next + 1) * width]),
                    }
                }
                match (&pixels, &crop) {
                    (Some(p), None) => p.extend(i, &mut x),
                    (None, None) => x.extend_from_slice(&xs[i * width..(i + 1) * width]),
                    (source, Some((shape, pad, fill, draws))) => {
                        let image = match source {
                            Some(p) => {
                                row.clear();
                                p.extend(i, &mut row);
                                &row[..]
                            }
                            None => &xs[i * width..(i + 1) * width],
                        };
                        crop::push(&mut x, image, (shape, *pad, fill), draws, k);
                    }
                }
                y.push(ys[i]);
            }
            let tally = pass.gradients(sizes, slices, (&x, &y), b);
            (pass.x, pass.y, pass.row) = (x, y, row);
            tally
        });
        drop(weights);
        self.update(params, sgd, b);
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
            let Dense {
                sizes,
                passes,
                crew,
                ..
            } = dense;
            let (sizes, width, weights) = (&sizes[..], sizes[0], &weights[..]);
            for (xb, yb) in xs
                .chunks(EVAL_BATCH as usize * width)
                .zip(ys.chunks(EVAL_BATCH as usize))
            {
                tally += across(crew, passes, yb.len(), |pass, rows| {
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
