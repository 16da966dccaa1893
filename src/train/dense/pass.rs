//! One thread's share of a dense-engine step (train/dense/mod.rs): the loss and
//! its gradient, and the forward and backward pass of a block of rows (their
//! matrix products in `products`); and how a batch is shared between threads.

use super::crew::Crew;
use super::products::{gemm, Scratch};

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

/// Batches of at least this many rows per thread are split across threads: below
/// it a thread's share costs less than starting it (Figure 1's batches of 10 stay
/// on one thread).
const ROWS_PER_THREAD: usize = 32;

/// One thread's share of a batch: its rows' activations and its gradients.
#[derive(Default)]
pub(super) struct Pass {
    /// Each layer's output for the rows (after ReLU on hidden layers).
    acts: Vec<Vec<f32>>,
    /// Gradients in the order of the parameters: W0, b0, W1, b1, ...
    pub(super) grads: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
    /// The products' scratch: each thread's own.
    products: Scratch,
    /// The rows this thread gathered itself (`Dense::step_rows`): inputs, labels,
    /// and one image before its crop.
    pub(super) x: Vec<f32>,
    pub(super) y: Vec<i64>,
    pub(super) row: Vec<f32>,
    /// What `work` returned in the last `across`.
    tally: Tally,
}

impl Pass {
    pub(super) fn new(sizes: &[usize]) -> Pass {
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
            gemm(
                (b, n_in, n_out),
                input,
                (n_in, 1),
                w,
                (1, n_in),
                1.0,
                out,
                &mut self.products,
            );
            if l + 1 < layers {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }

    /// Loss sum and correct count of the rows `x` with labels `y`, after `forward`.
    pub(super) fn score(
        &mut self,
        sizes: &[usize],
        params: &[&[f32]],
        x: &[f32],
        y: &[i64],
    ) -> Tally {
        self.forward(sizes, params, x, y.len());
        let classes = sizes[sizes.len() - 1];
        cross_entropy(&self.acts[sizes.len() - 2], y, classes, None)
    }

    /// Forward and backward pass of the rows `x` with labels `y`: their share of
    /// the gradient of the mean loss over a batch of `batch` rows, into `self.grads`.
    pub(super) fn gradients(
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
                &mut self.products,
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
                    &mut self.products,
                );
                // A select on every element rather than a store on some: the
                // compiler vectorises it (the branches were 6% of a toy epoch).
                for (d, &a) in self.delta_prev.iter_mut().zip(input) {
                    *d = if a <= 0.0 { 0.0 } else { *d };
                }
                std::mem::swap(&mut self.delta, &mut self.delta_prev);
            }
        }
        tally
    }
}

/// How many of `threads` threads share a batch of `rows` rows.
pub(super) fn chunks(threads: usize, rows: usize) -> usize {
    threads.min(rows / ROWS_PER_THREAD).max(1)
}

/// The passes handed out to the crew's threads, one each.
struct Shares(*mut Pass);

// Safety: `across` hands each pass to one thread only.
unsafe impl Sync for Shares {}

impl Shares {
    /// Pass `k`.
    ///
    /// # Safety
    /// `k` is within the slice, and no other reference to pass `k` lives meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, k: usize) -> &mut Pass {
        &mut *self.0.add(k)
    }
}

/// Runs `work` on consecutive row ranges of a `rows`-row batch, one per pass, the
/// first on this thread and the others on the crew's (one crew thread per pass
/// after the first); tallies summed in order.
pub(super) fn across<F>(crew: &Crew, passes: &mut [Pass], rows: usize, work: F) -> Tally
where
    F: Fn(&mut Pass, std::ops::Range<usize>) -> Tally + Sync,
{
    assert!(passes.len() <= crew.size(), "a crew thread for every pass");
    let chunks = chunks(passes.len(), rows);
    let range = |k: usize| k * rows / chunks..(k + 1) * rows / chunks;
    if chunks == 1 {
        return work(&mut passes[0], range(0));
    }
    let shares = Shares(passes.as_mut_ptr());
    crew.run(&|k| {
        if k < chunks {
            // Safety: k < chunks ≤ passes.len(), and thread k alone takes pass k.
            let pass = unsafe { shares.get(k) };
            pass.tally = work(pass, range(k));
        }
    });
    let mut tally = Tally::default();
    for pass in &passes[..chunks] {
        tally += pass.tally;
    }
    tally
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
        let tally = across(&Crew::new(2), &mut passes, 128, |_, rows| {
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
