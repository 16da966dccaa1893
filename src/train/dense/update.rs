//! The SGD step that ends a dense-engine step: the threads' gradients summed in
//! a fixed order, then `SgdOptions::update_host`, shared between the crew's
//! threads when the batch's rows were.
//!
//! Why shared: on the caller's thread alone, summing and updating the mlp's
//! 113,610 parameters took about a sixth of its step while the other thread
//! spun (docs/PERFORMANCE.md). Every element's sum and update involves that
//! element alone, so each thread takes a stretch of every parameter and the
//! floats are those of one thread doing it all.

use super::crew::Crew;
use super::pass::Pass;
use crate::train::sgd::{HostBuffer, Sgd, SgdOptions};
use std::sync::Mutex;
use tch::Tensor;

/// One thread's stretch of one parameter.
struct Stretch<'a> {
    param: usize,
    start: usize,
    values: &'a mut [f32],
    /// The first pass's gradient, which the others' are added into.
    grad: &'a mut [f32],
    buffer: Option<HostBuffer<'a>>,
}

impl Stretch<'_> {
    fn step(self, options: &SgdOptions, others: &[Pass]) {
        let range = self.start..self.start + self.grad.len();
        for other in others {
            let theirs = &other.grads[self.param][range.clone()];
            self.grad.iter_mut().zip(theirs).for_each(|(g, o)| *g += o);
        }
        options.update_host(self.values, self.grad, self.buffer);
    }
}

/// `parts` consecutive stretches of `values`, the k-th starting at k·n/parts.
fn stretches<T>(mut values: &mut [T], parts: usize) -> Vec<&mut [T]> {
    let n = values.len();
    (0..parts)
        .map(|k| {
            let len = (k + 1) * n / parts - k * n / parts;
            let (head, tail) = std::mem::take(&mut values).split_at_mut(len);
            values = tail;
            head
        })
        .collect()
}

/// Sums the gradients of the first `used` passes into the first's and takes
/// the SGD step with them: on every crew thread when `used` > 1 (the crew is
/// then awake from the step's rows), else on this one (`Sgd::step_host`: one
/// pass, nothing to sum, and Figure 1's steps of a few microseconds pay no
/// hand-out).
pub(super) fn update(
    crew: &Crew,
    passes: &mut [Pass],
    used: usize,
    params: &[Tensor],
    sgd: &mut Sgd,
) {
    if used == 1 {
        return sgd.step_host(params, &mut passes[0].grads);
    }
    let options = sgd.options;
    let threads = crew.size();
    let (first, others) = passes.split_at_mut(1);
    let others = &others[..used - 1];
    let mut shares: Vec<Vec<Stretch>> = (0..threads)
        .map(|_| Vec::with_capacity(params.len()))
        .collect();
    let buffers = sgd.host_buffers(params);
    for (param, ((p, grad), buffer)) in params
        .iter()
        .zip(&mut first[0].grads)
        .zip(buffers)
        .enumerate()
    {
        // Safety: the dense engine only runs on contiguous CPU float tensors
        // (`Dense::for_model`), and no other slice of this parameter lives
        // during the update.
        let values = unsafe { crate::slices::floats_mut(p) };
        let n = values.len();
        let buffers: Vec<Option<HostBuffer>> = match buffer {
            Some(HostBuffer { values, first }) => stretches(values, threads)
                .into_iter()
                .map(|values| Some(HostBuffer { values, first }))
                .collect(),
            None => (0..threads).map(|_| None).collect(),
        };
        let pieces = stretches(values, threads)
            .into_iter()
            .zip(stretches(grad, threads));
        for (k, ((values, grad), buffer)) in pieces.zip(buffers).enumerate() {
            shares[k].push(Stretch {
                param,
                start: k * n / threads,
                values,
                grad,
                buffer,
            });
        }
    }
    let shares: Vec<Mutex<Vec<Stretch>>> = shares.into_iter().map(Mutex::new).collect();
    let work = |k: usize| {
        let mine = std::mem::take(&mut *shares[k].lock().unwrap_or_else(|e| e.into_inner()));
        for stretch in mine {
            stretch.step(&options, others);
        }
    };
    crew.run(&work);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::sgd::SgdOptions;
    use tch::Kind;

    #[test]
    fn stretches_cover_the_values_in_order() {
        let mut v: Vec<usize> = (0..10).collect();
        let parts = stretches(&mut v, 3);
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [3, 3, 4]);
        assert_eq!(parts.concat(), (0..10).collect::<Vec<_>>());
        let mut few = vec![1, 2];
        assert_eq!(
            stretches(&mut few, 3)
                .iter()
                .map(|p| p.len())
                .collect::<Vec<_>>(),
            [0, 1, 1]
        );
    }

    /// Three passes' gradients, stepped by the crew's threads and by one thread
    /// (the sum in pass order, then `Sgd::step_host`): the same floats, on
    /// the first step (buffers made) and the later ones, with momentum,
    /// dampening, Nesterov or none and weight decay.
    #[test]
    fn the_shared_update_is_the_single_threads_bit_for_bit() {
        let sizes: [usize; 4] = [3 * 50, 50, 7 * 50, 7];
        let options = [
            SgdOptions {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                weight_decay: 5e-4,
                nesterov: false,
            },
            SgdOptions {
                lr: 0.05,
                momentum: 0.9,
                dampening: 0.0,
                weight_decay: 0.01,
                nesterov: true,
            },
            SgdOptions {
                lr: 0.2,
                momentum: 0.5,
                dampening: 0.3,
                weight_decay: 0.0,
                nesterov: false,
            },
            SgdOptions {
                lr: 0.3,
                momentum: 0.0,
                dampening: 0.0,
                weight_decay: 0.0,
                nesterov: false,
            },
        ];
        for o in options {
            let draw = || -> Vec<Tensor> {
                let cpu = (Kind::Float, tch::Device::Cpu);
                sizes
                    .iter()
                    .map(|&n| Tensor::randn([n as i64], cpu))
                    .collect()
            };
            // Each step's three passes' gradients, then the parameters.
            let (params, grads) = crate::rng::seeded(7, || {
                let grads: Vec<Vec<Vec<Tensor>>> =
                    (0..3).map(|_| (0..3).map(|_| draw()).collect()).collect();
                (draw(), grads)
            });
            let copy: Vec<Tensor> = params.iter().map(|p| p.copy()).collect();
            let start = params[0].copy();
            let crew = Crew::new(2);
            let (mut shared, mut single) = (Sgd::new(o, 4).unwrap(), Sgd::new(o, 4).unwrap());
            for (step, grads) in grads.iter().enumerate() {
                let mut passes: Vec<Pass> = (0..3).map(|_| Pass::default()).collect();
                for (pass, grads) in passes.iter_mut().zip(grads) {
                    pass.grads = grads
                        .iter()
                        .map(|g| Vec::<f32>::try_from(g).unwrap())
                        .collect();
                }
                let mut summed = passes[0].grads.clone();
                for other in &passes[1..] {
                    for (g, o) in summed.iter_mut().zip(&other.grads) {
                        g.iter_mut().zip(o).for_each(|(g, o)| *g += o);
                    }
                }
                single.step_host(&copy, &mut summed);
                update(&crew, &mut passes, 3, &params, &mut shared);
                for (p, q) in params.iter().zip(&copy) {
                    assert!(p.equal(q), "{o:?} step {step}: parameters differ");
                }
                for (b, c) in shared.buffers().iter().zip(single.buffers()) {
                    match (b, c) {
                        (Some(b), Some(c)) => {
                            assert!(b.equal(c), "{o:?} step {step}: buffers differ")
                        }
                        (None, None) => {}
                        _ => panic!("one side has a buffer, the other not"),
                    }
                }
            }
            assert!(!params[0].equal(&start), "{o:?}: the steps moved nothing");
        }
    }
}
