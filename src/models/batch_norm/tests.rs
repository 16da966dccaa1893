//! The kernels against libtorch's batch norm, its relu, and float64.

use super::*;
use crate::rng::seeded;

/// Channels-last [n, c, h, w] activations whose channels sit far from zero
/// against their spread (the case where float32 sums lose digits), drawn
/// under `seed`'s lock so that tests running alongside draw other numbers.
fn activations(n: i64, c: i64, h: i64, w: i64, seed: i64) -> Tensor {
    seeded(seed, || {
        let shift = Tensor::arange(c, (Kind::Float, Device::Cpu)).view([1, c, 1, 1]) * 7.0 - 3.0;
        let x = Tensor::randn([n, h, w, c], (Kind::Float, Device::Cpu)).permute([0, 3, 1, 2]);
        x * 0.5 + shift
    })
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl Norm {
    fn new(c: i64, kind: Kind) -> Norm {
        let opts = (kind, Device::Cpu);
        Norm {
            weight: (Tensor::rand([c], opts) + 0.5).set_requires_grad(true),
            bias: Tensor::randn([c], opts).set_requires_grad(true),
            running_mean: Tensor::randn([c], opts),
            running_var: Tensor::rand([c], opts) + 0.5,
        }
    }

    fn to(&self, kind: Kind) -> Norm {
        let leaf = |t: &Tensor| t.detach().to_kind(kind).set_requires_grad(true);
        Norm {
            weight: leaf(&self.weight),
            bias: leaf(&self.bias),
            // A copy even in the same kind: each run moves its own.
            running_mean: self.running_mean.to_kind(kind).copy(),
            running_var: self.running_var.to_kind(kind).copy(),
        }
    }

    fn libtorch(&self, x: &Tensor) -> Tensor {
        self.libtorch_then(x, true)
    }

    /// libtorch's batch norm in training (`train`) or eval mode.
    fn libtorch_then(&self, x: &Tensor, train: bool) -> Tensor {
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            0.1,
            1e-5,
            false,
        )
    }

    fn eval_kernels(&self, x: &Tensor, after: After) -> Option<Tensor> {
        let n = (
            &self.weight,
            &self.bias,
            &self.running_mean,
            &self.running_var,
        );
        eval_channels_last(x, n.0, n.1, n.2, n.3, 1e-5, after)
    }

    fn kernels(&self, x: &Tensor) -> Tensor {
        self.through_kernels(x, After::Nothing)
    }

    fn kernels_relu(&self, x: &Tensor) -> Tensor {
        self.through_kernels(x, After::Relu)
    }

    fn through_kernels(&self, x: &Tensor, after: After) -> Tensor {
        let n = (
            &self.weight,
            &self.bias,
            &self.running_mean,
            &self.running_var,
        );
        train_channels_last(x, n.0, n.1, n.2, n.3, 0.1, 1e-5, after).expect("the kernels take x")
    }
}

/// Output, running statistics and the gradients of x, weight and bias for
/// an output gradient `g`, through `f`.
fn run(f: impl Fn(&Norm, &Tensor) -> Tensor, n: &Norm, x: &Tensor, g: &Tensor) -> Vec<Tensor> {
    outputs(|n, x, _| f(n, x), n, x, None, g)
}

/// `run` for a residual block's end relu(bn(x) + skip): the skip's gradient
/// last.
fn run_block(
    f: impl Fn(&Norm, &Tensor, &Tensor) -> Tensor,
    n: &Norm,
    x: &Tensor,
    skip: &Tensor,
    g: &Tensor,
) -> Vec<Tensor> {
    outputs(|n, x, s| f(n, x, s.expect("a skip")), n, x, Some(skip), g)
}

fn outputs(
    f: impl Fn(&Norm, &Tensor, Option<&Tensor>) -> Tensor,
    n: &Norm,
    x: &Tensor,
    skip: Option<&Tensor>,
    g: &Tensor,
) -> Vec<Tensor> {
    let leaf = x.detach().set_requires_grad(true);
    let skip_leaf = skip.map(|s| s.detach().set_requires_grad(true));
    let y = f(n, &leaf, skip_leaf.as_ref());
    let mut wrt = vec![&leaf, &n.weight, &n.bias];
    wrt.extend(skip_leaf.as_ref());
    let grads = Tensor::run_backward(&[(&y * g).sum(y.kind())], &wrt, false, false);
    let mut out = vec![y.detach(), n.running_mean.copy(), n.running_var.copy()];
    out.extend(grads);
    out
}

fn bits(t: &Tensor) -> Vec<u32> {
    let t = t.contiguous().flatten(0, -1);
    Vec::<f32>::try_from(t)
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn count_differing(a: &Tensor, b: &Tensor) -> usize {
    bits(a)
        .iter()
        .zip(bits(b))
        .filter(|(x, y)| **x != *y)
        .count()
}

/// |a − b| at its largest, against b's largest |value|.
fn relative(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max();
    diff.double_value(&[]) / b.abs().max().to_kind(Kind::Double).double_value(&[])
}

#[test]
fn the_forward_is_libtorchs_nchw_bit_for_bit_and_the_gradients_as_accurate() {
    // c = 16 and 24: vectorised channels; 3 and 1: a partial or no vector;
    // odd planes; a single pixel per image. The last four hold at least
    // 32,768 values, so libtorch's two threads share them: by channels
    // (eight, six blocks of four, or 19 channels with three left over) and
    // by rows.
    for (k, (n, c, h, w)) in [
        (8, 16, 6, 6),
        (4, 3, 7, 5),
        (16, 1, 4, 4),
        (5, 24, 3, 9),
        (64, 8, 1, 1),
        (32, 8, 12, 12),
        (16, 24, 10, 10),
        (9, 19, 15, 13),
        (128, 3, 11, 9),
    ]
    .into_iter()
    .enumerate()
    {
        let x = activations(n, c, h, w, k as i64);
        let (g, norm) = seeded(100 + k as i64, || {
            (x.randn_like(), Norm::new(c, Kind::Float))
        });
        let (ours_n, nchw_n, f64_n) = (
            norm.to(Kind::Float),
            norm.to(Kind::Float),
            norm.to(Kind::Double),
        );
        let ours = run(Norm::kernels, &ours_n, &x, &g);
        let nchw = run(Norm::libtorch, &nchw_n, &x.contiguous(), &g.contiguous());
        let exact = run(
            Norm::libtorch,
            &f64_n,
            &x.to_kind(Kind::Double).contiguous(),
            &g.to_kind(Kind::Double),
        );
        let what = format!("{n}x{c}x{h}x{w}");
        assert!(
            is_channels_last(&ours[0]),
            "{what}: the output stays channels-last"
        );
        for (i, name) in ["output", "running mean", "running variance"]
            .iter()
            .enumerate()
        {
            // One-pixel planes: libtorch sums those in its channels-last
            // float32 kernel (an [n, c, 1, 1] tensor is in both layouts),
            // where these keep float64's sums.
            if h * w == 1 {
                let (ours_err, nchw_err) =
                    (relative(&ours[i], &exact[i]), relative(&nchw[i], &exact[i]));
                assert!(
                    ours_err <= nchw_err.max(1e-7),
                    "{what}: {name} off float64 by {ours_err:e} (libtorch {nchw_err:e})"
                );
                continue;
            }
            let differ = count_differing(&ours[i], &nchw[i]);
            let by = relative(&ours[i], &nchw[i]);
            assert_eq!(
                differ, 0,
                "{what}: {name}: {differ} floats differ, by up to {by:e}"
            );
        }
        // The gradients: libtorch's NCHW kernel sums in float32 lanes where
        // these sum in float64, so they agree to rounding, and are at least
        // as close to float64's.
        for (i, name) in [
            (3, "input gradient"),
            (4, "weight gradient"),
            (5, "bias gradient"),
        ] {
            let (to_nchw, ours_err) = (relative(&ours[i], &nchw[i]), relative(&ours[i], &exact[i]));
            let nchw_err = relative(&nchw[i], &exact[i]);
            assert!(
                to_nchw <= 1e-5,
                "{what}: {name} differs from NCHW's by {to_nchw:e}"
            );
            assert!(
                ours_err <= 2.0 * nchw_err + 1e-7,
                "{what}: {name} off float64 by {ours_err:e} (NCHW {nchw_err:e})"
            );
        }
        // Without a gradient: the same output and running statistics.
        let plain_n = norm.to(Kind::Float);
        let plain = tch::no_grad(|| plain_n.kernels(&x));
        assert_eq!(
            bits(&plain),
            bits(&ours[0]),
            "{what}: the forward without a gradient"
        );
        assert_eq!(
            bits(&plain_n.running_var),
            bits(&ours[2]),
            "{what}: its running variance"
        );
    }
}

/// The ReLU tests' shapes: vectorised and not; on one thread and shared by
/// two (by channels and by rows).
const RELU_SHAPES: [(i64, i64, i64, i64); 4] = [
    (8, 16, 6, 6),
    (4, 3, 7, 5),
    (32, 8, 12, 12),
    (9, 19, 15, 13),
];

/// Asserts that `y`, a ReLU's output, has some zeros and some values kept.
fn assert_relu_cuts(y: &Tensor, what: &str) {
    let zeros = i64::try_from(y.eq(0.0).sum(Kind::Int64)).unwrap();
    assert!(
        zeros > 0 && zeros < y.numel() as i64,
        "{what}: the ReLU cuts some values and keeps others ({zeros} zeros)"
    );
}

/// Asserts that a fused pass's `run` (or `run_block`) results are those of
/// the separate ops bit for bit, and that its output is a ReLU's that stays
/// channels-last.
fn assert_fused_is_after(fused: &[Tensor], after: &[Tensor], what: &str) {
    assert_relu_cuts(&fused[0], what);
    assert!(
        is_channels_last(&fused[0]),
        "{what}: the output stays channels-last"
    );
    let names = [
        "output",
        "running mean",
        "running variance",
        "input gradient",
        "weight gradient",
        "bias gradient",
        "skip gradient",
    ];
    assert_eq!(fused.len(), after.len(), "{what}: as many results");
    for (i, name) in names.into_iter().take(fused.len()).enumerate() {
        let differ = count_differing(&fused[i], &after[i]);
        assert_eq!(differ, 0, "{what}: {name}: {differ} floats differ");
    }
}

#[test]
fn the_relu_in_the_same_pass_is_the_relu_after_it_bit_for_bit() {
    for (k, (n, c, h, w)) in RELU_SHAPES.into_iter().enumerate() {
        let x = activations(n, c, h, w, k as i64);
        let (g, norm) = seeded(200 + k as i64, || {
            (x.randn_like(), Norm::new(c, Kind::Float))
        });
        let (fused_n, after_n) = (norm.to(Kind::Float), norm.to(Kind::Float));
        let fused = run(Norm::kernels_relu, &fused_n, &x, &g);
        let after = run(|n, x| n.kernels(x).relu(), &after_n, &x, &g);
        let what = format!("{n}x{c}x{h}x{w}");
        assert_fused_is_after(&fused, &after, &what);
        let plain_n = norm.to(Kind::Float);
        let plain = tch::no_grad(|| plain_n.kernels_relu(&x));
        assert_eq!(bits(&plain), bits(&after[0]), "{what}: without a gradient");
    }
}

/// A skip connection's values for `x`: channels-last, about as large.
fn skip_for(x: &Tensor, seed: i64) -> Tensor {
    seeded(seed, || x.randn_like() * 2.0)
}

#[test]
fn a_blocks_end_in_the_same_pass_is_the_add_and_relu_after_it_bit_for_bit() {
    for (k, (n, c, h, w)) in RELU_SHAPES.into_iter().enumerate() {
        let x = activations(n, c, h, w, 500 + k as i64);
        let skip = skip_for(&x, 600 + k as i64);
        let (g, norm) = seeded(700 + k as i64, || {
            (x.randn_like(), Norm::new(c, Kind::Float))
        });
        let (fused_n, after_n) = (norm.to(Kind::Float), norm.to(Kind::Float));
        let fused = run_block(
            |n, x, s| n.through_kernels(x, After::AddRelu(s)),
            &fused_n,
            &x,
            &skip,
            &g,
        );
        let after = run_block(|n, x, s| (n.kernels(x) + s).relu(), &after_n, &x, &skip, &g);
        let what = format!("{n}x{c}x{h}x{w}");
        assert_fused_is_after(&fused, &after, &what);
        // The skip's gradient is the ReLU's: zero where the output is.
        let cut = fused[0].eq(0.0);
        let passed = fused[6].masked_select(&cut).abs().sum(Kind::Float);
        assert_eq!(f64::try_from(passed).unwrap(), 0.0, "{what}: cut gradients");
        let plain_n = norm.to(Kind::Float);
        let plain = tch::no_grad(|| plain_n.through_kernels(&x, After::AddRelu(&skip)));
        assert_eq!(bits(&plain), bits(&after[0]), "{what}: without a gradient");
    }
}

#[test]
fn evaluation_of_a_blocks_end_is_libtorchs_bit_for_bit() {
    for (k, (n, c, h, w)) in RELU_SHAPES.into_iter().enumerate() {
        let x = activations(n, c, h, w, 800 + k as i64);
        let skip = skip_for(&x, 900 + k as i64);
        let norm = seeded(1000 + k as i64, || Norm::new(c, Kind::Float));
        let theirs = tch::no_grad(|| (norm.libtorch_then(&x, false) + &skip).relu());
        let ours = tch::no_grad(|| norm.eval_kernels(&x, After::AddRelu(&skip)))
            .expect("the kernels take x without gradients");
        let what = format!("{n}x{c}x{h}x{w}");
        assert_relu_cuts(&ours, &what);
        let differ = count_differing(&ours, &theirs);
        assert_eq!(differ, 0, "{what}: {differ} floats differ");
        assert!(
            norm.eval_kernels(&x, After::AddRelu(&skip)).is_none(),
            "{what}: taken while recording gradients"
        );
        assert!(
            tch::no_grad(|| norm.eval_kernels(&x, After::Nothing)).is_none(),
            "{what}: a batch norm alone is libtorch's"
        );
    }
}

#[test]
fn evaluation_with_its_relu_is_libtorchs_bit_for_bit() {
    for (k, (n, c, h, w)) in RELU_SHAPES.into_iter().enumerate() {
        let x = activations(n, c, h, w, 300 + k as i64);
        let norm = seeded(400 + k as i64, || Norm::new(c, Kind::Float));
        let theirs = tch::no_grad(|| norm.libtorch_then(&x, false).relu());
        let ours = tch::no_grad(|| norm.eval_kernels(&x, After::Relu))
            .expect("the kernels take x without gradients");
        let what = format!("{n}x{c}x{h}x{w}");
        assert_relu_cuts(&ours, &what);
        assert!(
            is_channels_last(&ours),
            "{what}: the output stays channels-last"
        );
        let differ = count_differing(&ours, &theirs);
        assert_eq!(differ, 0, "{what}: {differ} floats differ");
        // With gradients recorded (FGSM's input gradient in eval mode),
        // libtorch's ops build the graph.
        assert!(
            norm.eval_kernels(&x, After::Relu).is_none(),
            "{what}: taken while recording gradients"
        );
    }
}

#[test]
fn other_layouts_kinds_and_sizes_take_libtorchs_batch_norm() {
    let x = activations(2, 8, 4, 4, 0);
    let norm = seeded(1, || Norm::new(8, Kind::Float));
    let per_channel = [
        &norm.weight,
        &norm.bias,
        &norm.running_mean,
        &norm.running_var,
    ];
    let nothing = After::Nothing;
    assert!(takes(&x, per_channel, nothing));
    assert!(!takes(&x.contiguous(), per_channel, nothing), "NCHW");
    assert!(
        !takes(&x.to_kind(Kind::Double), per_channel, nothing),
        "float64"
    );
    assert!(
        !takes(
            &x.narrow(0, 0, 1).narrow(2, 0, 1).narrow(3, 0, 1),
            per_channel,
            nothing
        ),
        "one value a channel"
    );
    let short = Tensor::zeros([4], (Kind::Float, Device::Cpu));
    assert!(
        !takes(
            &x,
            [&norm.weight, &norm.bias, &short, &norm.running_var],
            nothing
        ),
        "statistics of another size"
    );
    assert!(takes(&x, per_channel, After::AddRelu(&x.copy())));
    for (skip, what) in [
        (x.contiguous(), "a skip NCHW"),
        (x.narrow(0, 0, 1).copy(), "a skip of another size"),
        (x.to_kind(Kind::Double), "a float64 skip"),
    ] {
        assert!(!takes(&x, per_channel, After::AddRelu(&skip)), "{what}");
    }
}
