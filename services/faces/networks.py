"""PyTorch definitions of the pretrained networks; weights come from services.faces.keras_convert."""

import itertools
import math

import torch
import torch.nn.functional as F
from facenet_pytorch import InceptionResnetV1
from torch import nn

KERAS_BN_EPS = 1e-3  # Keras BatchNormalization default; PyTorch's default is 1e-5


def build_facenet128() -> InceptionResnetV1:
    """facenet-pytorch's Inception-ResNet-v1 with the Keras FaceNet's 128-d bottleneck head.

    Input (N, 3, 160, 160) prewhitened RGB; output (N, 128) before L2 normalisation.
    """
    # classify=True skips forward()'s L2 normalisation; an Identity "logits" then returns last_bn's output.
    model = InceptionResnetV1(classify=True, num_classes=128, dropout_prob=0.2)  # Keras Dropout rate 0.2
    model.logits = nn.Identity()
    model.last_linear = nn.Linear(1792, 128, bias=False)
    model.last_bn = nn.BatchNorm1d(128, eps=KERAS_BN_EPS)
    return model.eval()


def _max_pool_same(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """Keras MaxPooling2D(padding='same'): TF puts the odd padding pixel bottom/right; -inf padding never wins."""
    pad = []
    for size in (x.shape[3], x.shape[2]):  # F.pad lists the last dimension first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pad += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pad, value=float("-inf")), kernel, stride)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (3x3, stride 1, 'same', no bias): depthwise conv per channel, then 1x1 pointwise conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Two separable convs + strided 'same' max-pool, added to a strided 1x1 conv shortcut; halves H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        # A 1x1 kernel never needs 'same' padding, whatever the stride, so padding=0 matches Keras.
        self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS)
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut_bn(self.shortcut_conv(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.bn2(self.sep2(x))
        return _max_pool_same(x) + shortcut


class MiniXception(nn.Module):
    """oarriaga/face_classification mini-Xception expression classifier.

    Input (N, 1, 64, 64) gray in [-1, 1]; output (N, 7) softmax over
    angry, disgust, fear, happy, sad, surprise, neutral.
    """

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=KERAS_BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=KERAS_BN_EPS)
        channels = [8, 16, 32, 64, 128]
        self.blocks = nn.Sequential(*(XceptionBlock(c_in, c_out) for c_in, c_out in itertools.pairwise(channels)))
        self.classifier = nn.Conv2d(128, num_classes, 3, padding=1)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.classifier(self.blocks(x))
        return F.softmax(x.mean(dim=(2, 3)), dim=1)
