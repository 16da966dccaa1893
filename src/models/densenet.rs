//! DenseNet-BC with depth 40 and growth rate 12 for CIFAR (Huang et al.; the
//! andreasveit/densenet-pytorch `DenseNet3(40, classes, 12, reduction=0.5,
//! bottleneck=True)` module the CIFAR literature uses): a 3x3 stem conv to
//! 2·growth channels; three dense blocks of (40 − 4)/6 = 6 bottleneck layers, each
//! BN-ReLU-conv1x1 to 4·growth channels, BN-ReLU-conv3x3 to growth channels,
//! concatenated onto its input; between blocks a transition BN-ReLU-conv1x1 that
//! halves the channels (rounded down) and a 2x2 average pool; then BN-ReLU, global
//! average pooling (that module's F.avg_pool2d(out, 8) on 32x32 inputs) and one
//! linear layer. All convs are bias-free. Names: `conv1`, `block1.layer.0.bn1`,
//! `block1.layer.0.conv1`, `block1.layer.0.bn2`, `block1.layer.0.conv2`,
//! `trans1.bn1`, `trans1.conv1`, ..., `bn1`, `fc`.
//!
//! Initialisation as DenseNet3.__init__: every module is first built with
//! PyTorch's defaults, then, in module order, conv weights are redrawn from
//! N(0, √(2/(k²·out_channels))), batch norms set to weight 1 and bias 0 (already
//! so), and the linear bias set to 0. Replaying those draws keeps a seed's weights
//! identical to PyTorch's.

use super::layers::{avg_pool2, global_avg_pool, BatchNorm2d, Conv2d, Linear, Scope};
use super::spec::{scaled, ModelSpec};
use anyhow::Result;
use tch::nn::ModuleT;
use tch::Tensor;

const DEPTH: i64 = 40;
const GROWTH: i64 = 12;

/// BN-ReLU-conv.
#[derive(Debug)]
struct BnConv {
    bn: BatchNorm2d,
    conv: Conv2d,
}

impl BnConv {
    fn new(s: &Scope, index: usize, c_in: i64, c_out: i64, kernel: i64) -> Result<BnConv> {
        let bn = BatchNorm2d::new(&s.sub(format!("bn{index}")), c_in)?;
        let padding = kernel / 2;
        let conv = Conv2d::new(
            &s.sub(format!("conv{index}")),
            c_in,
            c_out,
            kernel,
            1,
            padding,
            false,
        )?;
        Ok(BnConv { bn, conv })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.conv.forward(&self.bn.forward_relu_t(xs, train))
    }
}

#[derive(Debug)]
enum Unit {
    /// BottleneckBlock: its output is concatenated onto its input.
    Dense(BnConv, BnConv),
    /// TransitionBlock.
    Transition(BnConv),
}

#[derive(Debug)]
pub struct DenseNet {
    conv1: Conv2d,
    units: Vec<Unit>,
    bn1: BatchNorm2d,
    fc: Linear,
}

impl DenseNet {
    pub fn new(s: &Scope, spec: &ModelSpec) -> Result<DenseNet> {
        let growth = scaled(GROWTH, spec.width);
        let per_block = (DEPTH - 4) / 6;
        let (c, _, _) = spec.image();
        let mut channels = 2 * growth;
        let conv1 = Conv2d::new(&s.sub("conv1"), c, channels, 3, 1, 1, false)?;
        let mut units = Vec::new();
        for block in 1..=3 {
            let layer = s.sub(format!("block{block}")).sub("layer");
            for i in 0..per_block {
                let l = layer.sub(i);
                let inter = 4 * growth;
                units.push(Unit::Dense(
                    BnConv::new(&l, 1, channels, inter, 1)?,
                    BnConv::new(&l, 2, inter, growth, 3)?,
                ));
                channels += growth;
            }
            if block < 3 {
                let out = channels / 2;
                let t = s.sub(format!("trans{block}"));
                units.push(Unit::Transition(BnConv::new(&t, 1, channels, out, 1)?));
                channels = out;
            }
        }
        let bn1 = BatchNorm2d::new(&s.sub("bn1"), channels)?;
        let fc = Linear::new(&s.sub("fc"), channels, spec.classes)?;
        let net = DenseNet {
            conv1,
            units,
            bn1,
            fc,
        };
        net.reinitialise()?;
        Ok(net)
    }

    fn convs(&self) -> Vec<&Conv2d> {
        let mut convs = vec![&self.conv1];
        for unit in &self.units {
            match unit {
                Unit::Dense(a, b) => convs.extend([&a.conv, &b.conv]),
                Unit::Transition(t) => convs.push(&t.conv),
            }
        }
        convs
    }

    /// DenseNet3.__init__'s loop over self.modules(), in module order.
    fn reinitialise(&self) -> Result<()> {
        tch::no_grad(|| {
            for conv in self.convs() {
                let (out, _, kh, kw) = conv.weight.size4()?;
                let mut w = conv.weight.shallow_clone();
                let _ = w.f_normal_(0.0, (2.0 / (kh * kw * out) as f64).sqrt())?;
            }
            let _ = self.fc.bias.shallow_clone().f_zero_()?;
            Ok(())
        })
    }
}

impl ModuleT for DenseNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = self.conv1.forward(xs);
        for unit in &self.units {
            h = match unit {
                Unit::Dense(a, b) => {
                    let out = b.forward_t(&a.forward_t(&h, train), train);
                    Tensor::cat(&[h, out], 1)
                }
                Unit::Transition(t) => avg_pool2(&t.forward_t(&h, train)),
            };
        }
        let h = self.bn1.forward_relu_t(&h, train);
        self.fc.forward(&global_avg_pool(&h))
    }
}
