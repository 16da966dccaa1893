use super::*;
use crate::models::layers::{channels_last, is_channels_last};

/// Values with a spread of magnitudes, drawn under the generator's lock
/// (tests running alongside draw too).
fn draw(size: &[i64], seed: i64) -> Tensor {
    crate::rng::seeded(seed, || Tensor::randn(size, (Kind::Float, Device::Cpu)))
}

/// The output and the weight's and bias's gradients of `conv` for an output
/// gradient `r`: (y · r).sum()'s backward.
fn through(
    conv: impl Fn(&Tensor, &Tensor, Option<&Tensor>) -> Tensor,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    r: &Tensor,
) -> (Tensor, Tensor, Option<Tensor>) {
    let w = weight.detach().set_requires_grad(true);
    let b = bias.map(|b| b.detach().set_requires_grad(true));
    let y = conv(x, &w, b.as_ref());
    let mut leaves = vec![&w];
    leaves.extend(b.as_ref());
    let loss = (&y * r.to_kind(y.kind())).sum(y.kind());
    let grads = Tensor::run_backward(&[loss], &leaves, false, false);
    (
        y.detach(),
        grads[0].shallow_clone(),
        grads.get(1).map(Tensor::shallow_clone),
    )
}

fn libtorch(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    x.conv2d(w, b, [1, 1], [1, 1], [1, 1], 1)
}

fn ours(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    conv3x3(x, w, b, 1, 1).expect("the kernels take this convolution")
}

/// max |a − truth| / max |truth|, truth in float64.
fn error(a: &Tensor, truth: &Tensor) -> f64 {
    let scale = truth.abs().max().double_value(&[]);
    (a.to_kind(Kind::Double) - truth)
        .abs()
        .max()
        .double_value(&[])
        / scale
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v = Vec::<f32>::try_from(t.contiguous().flatten(0, -1)).unwrap();
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn outputs_and_gradients_are_libtorchs_as_accurately() {
    if !kernel::available() {
        panic!("this CPU lacks AVX2 and FMA: the kernels cannot be checked here");
    }
    // The cnn's and the ResNets' stems on Fashion-MNIST (one channel), a
    // CIFAR-like one NCHW and channels-last, a width that is no multiple of
    // the eight pixels summed side by side, and a batch libtorch's threads
    // share unevenly.
    for (k, (n, c_in, h, w, c_out, bias, last)) in [
        (16, 1, 32, 32, 8, true, false),
        (8, 1, 32, 32, 16, false, false),
        (5, 3, 12, 12, 16, true, false),
        (5, 3, 12, 12, 8, false, true),
        (3, 2, 7, 13, 24, true, true),
        (1, 4, 1, 1, 8, true, false),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 10 * k as i64;
        let mut x = draw(&[n, c_in, h, w], seed);
        if last {
            x = channels_last(&x);
        }
        let weight = draw(&[c_out, c_in, 3, 3], seed + 1) * 0.3;
        let b = bias.then(|| draw(&[c_out], seed + 2));
        let r = draw(&[n, c_out, h, w], seed + 3);
        let case = format!("{n}x{c_in}x{h}x{w} to {c_out}, bias {bias}, channels-last {last}");

        let (y, gw, gb) = through(ours, &x, &weight, b.as_ref(), &r);
        let (y_ref, gw_ref, gb_ref) = through(libtorch, &x, &weight, b.as_ref(), &r);
        let f64 = |t: &Tensor| t.to_kind(Kind::Double);
        let (y64, gw64, gb64) = through(
            libtorch,
            &f64(&x),
            &f64(&weight),
            b.as_ref().map(f64).as_ref(),
            &f64(&r),
        );
        assert!(is_channels_last(&y), "{case}: channels-last output");
        assert_eq!(y.size(), y_ref.size(), "{case}");
        // Each output is 9·c_in products: float32 rounding only, at most a
        // few times libtorch's own error (or a few float32 steps of it).
        let floor = 4.0 * f32::EPSILON as f64;
        for (what, a, reference, truth) in [
            ("output", &y, &y_ref, &y64),
            ("weight gradient", &gw, &gw_ref, &gw64),
        ] {
            let (e, e_ref) = (error(a, truth), error(reference, truth));
            assert!(
                e <= (2.0 * e_ref).max(floor),
                "{case}: {what} off float64 by {e:e}, libtorch by {e_ref:e}"
            );
            assert!(
                error(a, &f64(reference)) < 1e-5,
                "{case}: {what} far from libtorch's"
            );
        }
        match (gb, gb_ref, gb64) {
            (Some(gb), Some(gb_ref), Some(gb64)) => {
                let (e, e_ref) = (error(&gb, &gb64), error(&gb_ref, &gb64));
                assert!(
                    e <= (2.0 * e_ref).max(floor),
                    "{case}: bias gradient off float64 by {e:e}, libtorch by {e_ref:e}"
                );
            }
            (None, None, None) => {}
            _ => panic!("{case}: a bias gradient on one side only"),
        }
        let plain = tch::no_grad(|| ours(&x, &weight, b.as_ref()));
        assert_eq!(
            bits(&plain),
            bits(&y),
            "{case}: the same output without a gradient"
        );
    }
}

#[test]
fn the_weight_gradient_does_not_depend_on_the_thread_count() {
    if !kernel::available() {
        panic!("this CPU lacks AVX2 and FMA: the kernels cannot be checked here");
    }
    let x = draw(&[37, 1, 16, 16], 1);
    let weight = draw(&[8, 1, 3, 3], 2);
    let b = draw(&[8], 3);
    let r = draw(&[37, 8, 16, 16], 4);
    // torch's thread count is per OS thread (OpenMP's): this test's alone.
    let before = tch::get_num_threads();
    let runs: Vec<_> = [1, 2, 3]
        .into_iter()
        .map(|threads| {
            tch::set_num_threads(threads);
            let (y, gw, gb) = through(ours, &x, &weight, Some(&b), &r);
            (bits(&y), bits(&gw), bits(&gb.unwrap()))
        })
        .collect();
    tch::set_num_threads(before);
    assert_eq!(runs[0], runs[1], "one thread against two");
    assert_eq!(runs[0], runs[2], "one thread against three");
}

#[test]
fn other_convolutions_take_libtorchs() {
    let x = draw(&[2, 1, 8, 8], 0);
    let w = draw(&[8, 1, 3, 3], 1);
    assert!(conv3x3(&x, &w, None, 1, 1).is_some() || !kernel::available());
    assert!(conv3x3(&x, &w, None, 2, 1).is_none(), "stride 2");
    assert!(conv3x3(&x, &w, None, 1, 0).is_none(), "no padding");
    assert!(
        conv3x3(&x, &draw(&[6, 1, 3, 3], 2), None, 1, 1).is_none(),
        "6 outputs"
    );
    let x5 = draw(&[2, 5, 8, 8], 3);
    assert!(
        conv3x3(&x5, &draw(&[8, 5, 3, 3], 4), None, 1, 1).is_none(),
        "5 inputs"
    );
    assert!(
        conv3x3(&x, &draw(&[8, 1, 5, 5], 5), None, 1, 1).is_none(),
        "5x5"
    );
    let double = (x.to_kind(Kind::Double), w.to_kind(Kind::Double));
    assert!(
        conv3x3(&double.0, &double.1, None, 1, 1).is_none(),
        "float64"
    );
    let needs_grad = x.detach().set_requires_grad(true);
    assert!(
        conv3x3(&needs_grad, &w, None, 1, 1).is_none(),
        "an input gradient"
    );
    assert!(
        tch::no_grad(|| conv3x3(&needs_grad, &w, None, 1, 1)).is_some() || !kernel::available(),
        "no input gradient without grad mode"
    );
}

fn two_nodes(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    crate::models::pool_relu::pool2_relu(&ours(x, w, b))
}

fn pooled(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    conv3x3_pool2_relu(x, w, b, 1, 1).expect("the pooled kernels take this convolution")
}

#[test]
fn the_pooled_stage_is_the_convolution_then_pool_relu_bit_for_bit() {
    if !kernel::available() {
        panic!("this CPU lacks AVX2 and FMA: the kernels cannot be checked here");
    }
    // The cnn's first stage at widths 0.25 and 1, odd sizes whose last row
    // and column no window reads, a CIFAR-like input NCHW, and batches
    // libtorch's threads share unevenly.
    for (k, (n, c_in, h, w, c_out, bias, last)) in [
        (16, 1, 32, 32, 8, true, true),
        (5, 1, 32, 32, 32, true, true),
        (7, 3, 9, 11, 16, false, false),
        (3, 2, 5, 4, 8, true, false),
        (2, 1, 2, 2, 24, true, true),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 100 + 10 * k as i64;
        // Zero rows and scattered zeros, as an image's background: windows
        // whose four outputs tie at the bias, and maxima at or below zero.
        let keep = draw(&[n, 1, h, w], seed).gt(-0.3).to_kind(Kind::Float);
        let keep = keep
            * Tensor::arange(h, (Kind::Float, Device::Cpu))
                .ge(2)
                .view([1, 1, h, 1]);
        let mut x = draw(&[n, c_in, h, w], seed + 1) * keep;
        if last {
            x = channels_last(&x);
        }
        let weight = draw(&[c_out, c_in, 3, 3], seed + 2) * 0.3;
        let b = bias.then(|| draw(&[c_out], seed + 3) * 0.1);
        let r = crate::rng::seeded(seed + 4, || {
            (Tensor::randn([n, c_out, h / 2, w / 2], (Kind::Float, Device::Cpu)) * 2.0).round()
        });
        let case = format!("{n}x{c_in}x{h}x{w} to {c_out}, bias {bias}, channels-last {last}");

        let (y, gw, gb) = through(pooled, &x, &weight, b.as_ref(), &r);
        let (y_ref, gw_ref, gb_ref) = through(two_nodes, &x, &weight, b.as_ref(), &r);
        assert!(is_channels_last(&y), "{case}: channels-last output");
        assert_eq!(y.size(), y_ref.size(), "{case}");
        assert_eq!(bits(&y), bits(&y_ref), "{case}: outputs");
        assert_eq!(bits(&gw), bits(&gw_ref), "{case}: weight gradients");
        assert_eq!(
            gb.as_ref().map(bits),
            gb_ref.as_ref().map(bits),
            "{case}: bias gradients"
        );
        let zeros = y.eq(0.0).sum(Kind::Int64).int64_value(&[]);
        assert!(zeros > 0, "{case}: some windows rectified to zero");
        let plain = tch::no_grad(|| pooled(&x, &weight, b.as_ref()));
        assert_eq!(
            bits(&plain),
            bits(&y),
            "{case}: the same output without a gradient"
        );
    }
}

#[test]
fn the_pooled_stage_needs_a_window() {
    let w = draw(&[8, 1, 3, 3], 1);
    let row = draw(&[2, 1, 1, 8], 0);
    assert!(
        conv3x3_pool2_relu(&row, &w, None, 1, 1).is_none(),
        "one row: no window"
    );
    let x = draw(&[2, 1, 8, 8], 2);
    assert!(
        conv3x3_pool2_relu(&x, &w, None, 1, 1).is_some() || !kernel::available(),
        "8x8"
    );
    assert!(conv3x3_pool2_relu(&x, &w, None, 2, 1).is_none(), "stride 2");
}
