"""PyTorch modules mirroring minima's architectures (src/models/), written from
their definitions in docs/MODELS.md, for the interoperability test.

`build(spec)` takes the spec minima stores under the `minima_model` metadata key
of its safetensors files and returns the module whose `state_dict()` keys and
shapes those files hold. Each module is built in the same order as minima builds
it, so `torch.manual_seed(seed); build(spec)` draws the same initial weights.
"""

import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SPEC_KEY = "minima_model"


def scaled(channels, width):
    """round(channels * width), halves away from zero, at least 1 (as minima)."""
    return max(1, int(math.floor(channels * width + 0.5)))


class MLP(nn.Module):
    def __init__(self, inputs, hidden, classes):
        super().__init__()
        sizes = [inputs] + list(hidden) + [classes]
        mods = []
        for i in range(len(sizes) - 1):
            mods.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x.flatten(1))


class CNN(nn.Module):
    def __init__(self, channels, height, width_px, classes, width):
        super().__init__()
        c1, c2, hidden = scaled(32, width), scaled(64, width), scaled(128, width)
        self.features = nn.Sequential(
            nn.Conv2d(channels, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(c2 * (height // 4) * (width_px // 4), hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


VGG16_PLAN = [64, 64, "pool", 128, 128, "pool", 256, 256, 256, "pool",
              512, 512, 512, "pool", 512, 512, 512, "pool"]


class VGG16(nn.Module):
    def __init__(self, channels, classes, width):
        super().__init__()
        mods = []
        for entry in VGG16_PLAN:
            if entry == "pool":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                out = scaled(entry, width)
                mods += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*mods)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class Basic(nn.Module):
    expansion = 1

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = projection(c_in, planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = projection(c_in, 4 * planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def projection(c_in, c_out, stride):
    if stride == 1 and c_in == c_out:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class ResNet(nn.Module):
    def __init__(self, block, counts, channels, classes, width):
        super().__init__()
        c_in = scaled(64, width)
        self.conv1 = nn.Conv2d(channels, c_in, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        for stage, count in enumerate(counts):
            planes = scaled(64 << stage, width)
            blocks = []
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(c_in, planes, stride))
                c_in = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(c_in, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        for stage in range(1, 5):
            out = getattr(self, f"layer{stage}")(out)
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class DenseLayer(nn.Module):
    def __init__(self, c_in, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class DenseBlock(nn.Module):
    def __init__(self, count, c_in, growth):
        super().__init__()
        self.layer = nn.Sequential(*[DenseLayer(c_in + i * growth, growth) for i in range(count)])

    def forward(self, x):
        return self.layer(x)


class Transition(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)


class DenseNet40(nn.Module):
    def __init__(self, channels, classes, width):
        super().__init__()
        growth = scaled(12, width)
        count = (40 - 4) // 6
        c = 2 * growth
        self.conv1 = nn.Conv2d(channels, c, 3, padding=1, bias=False)
        self.block1 = DenseBlock(count, c, growth)
        c += count * growth
        self.trans1 = Transition(c, c // 2)
        c //= 2
        self.block2 = DenseBlock(count, c, growth)
        c += count * growth
        self.trans2 = Transition(c, c // 2)
        c //= 2
        self.block3 = DenseBlock(count, c, growth)
        c += count * growth
        self.bn1 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.trans1(self.block1(self.conv1(x)))
        out = self.trans2(self.block2(out))
        out = F.relu(self.bn1(self.block3(out)))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def build(spec):
    """The module for a minima spec (a dict, as in the file metadata)."""
    arch, classes, width = spec["arch"], spec["classes"], spec["width"]
    shape = spec["input_shape"]
    if arch == "mlp":
        return MLP(math.prod(shape), spec["hidden"], classes)
    channels, height, width_px = shape
    if arch == "cnn":
        return CNN(channels, height, width_px, classes, width)
    if arch == "vgg16":
        return VGG16(channels, classes, width)
    if arch == "resnet18":
        return ResNet(Basic, [2, 2, 2, 2], channels, classes, width)
    if arch == "resnet50":
        return ResNet(Bottleneck, [3, 4, 6, 3], channels, classes, width)
    if arch == "densenet40":
        return DenseNet40(channels, classes, width)
    raise ValueError(f"unknown arch {arch}")


def metadata(spec):
    """The safetensors metadata that lets minima's load_model read a file."""
    return {SPEC_KEY: json.dumps(spec)}
