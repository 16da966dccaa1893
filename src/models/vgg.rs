//! VGG16 as in the paper's code (BadGlobalMinima cifar10/model/vgg.py, the
//! kuangliu/pytorch-cifar VGG): thirteen 3x3 convolutions (padding 1, with bias),
//! each followed by BatchNorm2d and ReLU, five 2x2 max-pools, and one linear layer
//! from the flattened 1x1 map (512 channels) to the classes. The authors' trailing
//! AvgPool2d(1, 1) is the identity and has no parameters, so it is left out.
//! Names follow their `features = nn.Sequential(...)` numbering: conv `features.0`,
//! its batch norm `features.1`, ReLU 2; a max-pool takes one index. The linear
//! layer is `classifier`.

use super::layers::{max_pool2, BatchNorm2d, Conv2d, Linear, Scope};
use super::spec::{scaled, ModelSpec};
use anyhow::Result;
use tch::nn::ModuleT;
use tch::Tensor;

/// Channels of each conv; 0 marks a max-pool (the authors' 'M').
const VGG16: [i64; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

#[derive(Debug)]
enum Stage {
    Conv(Conv2d, BatchNorm2d),
    Pool,
}

#[derive(Debug)]
pub struct Vgg {
    features: Vec<Stage>,
    classifier: Linear,
}

impl Vgg {
    pub fn new(s: &Scope, spec: &ModelSpec) -> Result<Vgg> {
        let (mut channels, _, _) = spec.image();
        let features_scope = s.sub("features");
        let mut index = 0;
        let mut features = Vec::new();
        for &c in VGG16.iter() {
            if c == 0 {
                features.push(Stage::Pool);
                index += 1;
            } else {
                let out = scaled(c, spec.width);
                let conv = Conv2d::new(&features_scope.sub(index), channels, out, 3, 1, 1, true)?;
                let bn = BatchNorm2d::new(&features_scope.sub(index + 1), out)?;
                features.push(Stage::Conv(conv, bn));
                index += 3;
                channels = out;
            }
        }
        let classifier = Linear::new(&s.sub("classifier"), channels, spec.classes)?;
        Ok(Vgg {
            features,
            classifier,
        })
    }
}

impl ModuleT for Vgg {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = xs.shallow_clone();
        for stage in &self.features {
            h = match stage {
                Stage::Conv(conv, bn) => bn.forward_relu_t(&conv.forward(&h), train),
                Stage::Pool => max_pool2(&h),
            };
        }
        self.classifier.forward(&h.flatten(1, -1))
    }
}
