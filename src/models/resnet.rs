//! The CIFAR ResNets of the paper's code (BadGlobalMinima cifar10/model/resnet.py,
//! the kuangliu/pytorch-cifar ResNet): a 3x3 stride-1 stem conv to 64 channels +
//! BN + ReLU with no max-pool; four stages of 64, 128, 256, 512 planes (strides 1,
//! 2, 2, 2) of BasicBlocks [2, 2, 2, 2] (ResNet18) or Bottlenecks [3, 4, 6, 3]
//! (ResNet50, expansion 4); bias-free convs; a 1x1 conv + BN projection shortcut
//! where the stride or channel count changes; global average pooling and one
//! linear layer. The authors pool with F.avg_pool2d(out, 4), which is global for
//! the 4x4 maps that 32x32 (and 28x28) inputs give; minima pools globally so other
//! sizes work too. Names: `conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.bn1`, ...,
//! `layer2.0.shortcut.0` (conv), `layer2.0.shortcut.1` (BN), `linear`.

use super::layers::{global_avg_pool, BatchNorm2d, Conv2d, Linear, Scope};
use super::spec::{scaled, Arch, ModelSpec};
use anyhow::Result;
use tch::nn::ModuleT;
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Basic,
    Bottleneck,
}

impl Kind {
    fn expansion(self) -> i64 {
        match self {
            Kind::Basic => 1,
            Kind::Bottleneck => 4,
        }
    }
}

/// One residual block: its conv/BN pairs in order, and the projection shortcut.
#[derive(Debug)]
struct Block {
    layers: Vec<(Conv2d, BatchNorm2d)>,
    shortcut: Option<(Conv2d, BatchNorm2d)>,
}

impl Block {
    fn new(s: &Scope, kind: Kind, c_in: i64, planes: i64, stride: i64) -> Result<Block> {
        let out = kind.expansion() * planes;
        // (in, out, kernel, stride, padding) of each conv, as BasicBlock/Bottleneck.
        let convs = match kind {
            Kind::Basic => vec![(c_in, planes, 3, stride, 1), (planes, planes, 3, 1, 1)],
            Kind::Bottleneck => vec![
                (c_in, planes, 1, 1, 0),
                (planes, planes, 3, stride, 1),
                (planes, out, 1, 1, 0),
            ],
        };
        let layers = convs
            .into_iter()
            .enumerate()
            .map(|(i, (ci, co, k, st, p))| {
                let conv = Conv2d::new(&s.sub(format!("conv{}", i + 1)), ci, co, k, st, p, false)?;
                let bn = BatchNorm2d::new(&s.sub(format!("bn{}", i + 1)), co)?;
                Ok((conv, bn))
            })
            .collect::<Result<_>>()?;
        let shortcut = if stride != 1 || c_in != out {
            let sc = s.sub("shortcut");
            Some((
                Conv2d::new(&sc.sub(0), c_in, out, 1, stride, 0, false)?,
                BatchNorm2d::new(&sc.sub(1), out)?,
            ))
        } else {
            None
        };
        Ok(Block { layers, shortcut })
    }

    /// relu(bn_last(conv_last(...)) + shortcut(xs)), the last batch norm, the
    /// addition and the ReLU in one pass where the kernels take them.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (last, inner) = self.layers.split_last().expect("a block has convolutions");
        let mut h = xs.shallow_clone();
        for (conv, bn) in inner {
            h = bn.forward_relu_t(&conv.forward(&h), train);
        }
        let h = last.0.forward(&h);
        let skip = match &self.shortcut {
            Some((conv, bn)) => bn.forward_t(&conv.forward(xs), train),
            None => xs.shallow_clone(),
        };
        last.1.forward_add_relu_t(&h, &skip, train)
    }
}

#[derive(Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    blocks: Vec<Block>,
    linear: Linear,
}

impl ResNet {
    pub fn new(s: &Scope, spec: &ModelSpec) -> Result<ResNet> {
        let (kind, counts) = match spec.arch {
            Arch::Resnet50 => (Kind::Bottleneck, [3, 4, 6, 3]),
            _ => (Kind::Basic, [2, 2, 2, 2]),
        };
        let (c, _, _) = spec.image();
        let mut c_in = scaled(64, spec.width);
        let conv1 = Conv2d::new(&s.sub("conv1"), c, c_in, 3, 1, 1, false)?;
        let bn1 = BatchNorm2d::new(&s.sub("bn1"), c_in)?;
        let mut blocks = Vec::new();
        for (stage, &count) in counts.iter().enumerate() {
            let planes = scaled(64 << stage, spec.width);
            let layer = s.sub(format!("layer{}", stage + 1));
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                blocks.push(Block::new(&layer.sub(i), kind, c_in, planes, stride)?);
                c_in = planes * kind.expansion();
            }
        }
        let linear = Linear::new(&s.sub("linear"), c_in, spec.classes)?;
        Ok(ResNet {
            conv1,
            bn1,
            blocks,
            linear,
        })
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = self.bn1.forward_relu_t(&self.conv1.forward(xs), train);
        for block in &self.blocks {
            h = block.forward_t(&h, train);
        }
        self.linear.forward(&global_avg_pool(&h))
    }
}
