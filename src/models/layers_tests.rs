//! The layers' tests (`layers.rs`): convolution layouts and the batch norm
//! against PyTorch's definitions.

use super::*;
use tch::Device;

fn close(a: &Tensor, b: &Tensor) -> bool {
    (a - b).abs().max().double_value(&[]) < 1e-5
}

#[test]
fn a_channels_last_convolution_returns_channels_last_activations() {
    let names = RefCell::new(Vec::new());
    let conv = |layout| {
        let vs = nn::VarStore::new(Device::Cpu);
        let s = Scope::new(vs.root(), &names, layout);
        let conv = crate::rng::seeded(0, || Conv2d::new(&s, 1, 4, 3, 1, 1, true)).unwrap();
        (vs, conv)
    };
    let ((_a, nchw), (_b, last)) = (conv(ConvLayout::Nchw), conv(ConvLayout::ChannelsLast));
    let x = crate::rng::seeded(1, || {
        Tensor::randn([2, 1, 6, 6], (Kind::Float, Device::Cpu))
    });
    let (y0, y1) = (nchw.forward(&x), last.forward(&x));
    // One input channel: the input and the weight are laid out alike in both
    // formats, and still the output must come back channels-last.
    assert_eq!(y0.stride(), [144, 36, 6, 1]);
    assert_eq!(y1.stride(), [144, 1, 24, 4]);
    assert!(close(&y0, &y1));
    assert!(last.weight.is_contiguous());
}

#[test]
fn wide_convolutions_on_small_maps_run_nchw_in_a_channels_last_net() {
    // (in, out, kernel, stride, map side, whether the output comes back NCHW)
    let cases = [
        (256, 256, 3, 1, 8, true),
        (256, 512, 3, 1, 4, true),
        (256, 256, 3, 1, 9, false),
        (128, 256, 3, 1, 4, false),
        (256, 128, 3, 1, 4, false),
        (256, 256, 1, 1, 4, false),
        (256, 256, 3, 2, 8, false),
    ];
    let names = RefCell::new(Vec::new());
    for (c_in, c_out, k, stride, side, nchw_out) in cases {
        let conv = |layout| {
            let vs = nn::VarStore::new(Device::Cpu);
            let s = Scope::new(vs.root(), &names, layout);
            let make = || Conv2d::new(&s, c_in, c_out, k, stride, k / 2, false);
            let conv = crate::rng::seeded(0, make).unwrap();
            (vs, conv)
        };
        let ((_a, nchw), (_b, last)) = (conv(ConvLayout::Nchw), conv(ConvLayout::ChannelsLast));
        let x = crate::rng::seeded(1, || {
            Tensor::randn([2, c_in, side, side], (Kind::Float, Device::Cpu))
        });
        // The input comes channels-last from the layers before, as in a net.
        let x1 = channels_last(&x).set_requires_grad(true);
        let x0 = x.set_requires_grad(true);
        let (y0, y1) = (nchw.forward(&x0), last.forward(&x1));
        let case = format!("{c_in}->{c_out} k{k} s{stride} on {side}x{side}");
        assert_eq!(y1.is_contiguous(), nchw_out, "{case}: NCHW output");
        assert_eq!(
            is_channels_last(&y1),
            !nchw_out,
            "{case}: channels-last output"
        );
        let g = crate::rng::seeded(2, || y0.randn_like());
        (&y0 * &g).sum(Kind::Float).backward();
        (&y1 * &g).sum(Kind::Float).backward();
        // Where the rule applies, the convolution is the NCHW one bit for
        // bit, gradients included. Elsewhere channels-last kernels order
        // their sums over hundreds of products otherwise: equal within
        // float32's rounding of them.
        let same = |a: &Tensor, b: &Tensor| match nchw_out {
            true => a.equal(b),
            false => {
                let scale = b.abs().max().double_value(&[]);
                (a - b).abs().max().double_value(&[]) <= 1e-5 * scale
            }
        };
        assert!(same(&y1, &y0), "{case}: outputs differ");
        assert!(
            same(&x1.grad(), &x0.grad()),
            "{case}: input gradients differ"
        );
        let (w0, w1) = (nchw.weight.grad(), last.weight.grad());
        assert!(same(&w1, &w0), "{case}: weight gradients differ");
        assert!(
            last.weight.grad().is_contiguous(),
            "{case}: weight gradient layout"
        );
    }
}

#[test]
fn batch_norm_follows_pytorch_in_train_and_eval_mode() {
    let vs = nn::VarStore::new(Device::Cpu);
    let names = RefCell::new(Vec::new());
    let bn = BatchNorm2d::new(&Scope::new(vs.root(), &names, ConvLayout::Nchw), 3).unwrap();
    assert_eq!(
        *names.borrow(),
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked"
        ]
    );
    let x = crate::rng::seeded(1, || {
        Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu)) * 3.0 + 1.0
    });
    let dims: &[i64] = &[0, 2, 3];
    let mean = x.mean_dim(dims, true, Kind::Float);
    let biased = x.var_correction(dims, 0, true);
    let unbiased = x.var_correction(dims, 1, false);

    // Training: batch statistics normalise (biased variance); the running
    // statistics move by momentum 0.1 towards the mean and unbiased variance.
    let y = bn.forward_t(&x, true);
    assert!(close(&y, &((&x - &mean) / (&biased + 1e-5).sqrt())));
    assert!(close(&bn.running_mean, &(mean.flatten(0, -1) * 0.1)));
    assert!(close(&bn.running_var, &(unbiased * 0.1 + 0.9)));
    assert_eq!(bn.num_batches_tracked.int64_value(&[]), 1);

    // Eval: the running statistics normalise and stay as they are.
    let (rm, rv) = (bn.running_mean.copy(), bn.running_var.copy());
    let y = bn.forward_t(&x, false);
    let expected = (&x - rm.view([1, 3, 1, 1])) / (rv.view([1, 3, 1, 1]) + 1e-5).sqrt();
    assert!(close(&y, &expected));
    assert!(bn.running_mean.equal(&rm) && bn.running_var.equal(&rv));
    assert_eq!(bn.num_batches_tracked.int64_value(&[]), 1);
}
