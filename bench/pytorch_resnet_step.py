#!/usr/bin/env python3
"""PyTorch's side of `cargo bench -p visage-train --bench resnet_step`: one training step
(forward, backward, Adam) of dlib's ResNet-29 layout at batch 32 (8 people x 4 photos, batch-
hard triplet loss on Euclidean distances), on the CPU with the given number of threads.

The network is the same as visage's LayerNet runs: a 7x7 stride-2 stem, per-channel affine
(trainable scale and shift, as dlib's affine layers), 3x3 max pool, 14 residual blocks (down
blocks: first convolution stride 2 without padding, the skip a 2x2 average pool, the sum zero-
padding the smaller operand), global average pooling, fc 256 -> 128 without bias. Random
weights: the speed does not depend on their values.

Usage: pytorch_resnet_step.py THREADS STEPS; prints one JSON line {"seconds_per_step": ...}.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

STAGES = [(3, 32, False), (4, 64, True), (3, 128, True), (3, 256, True), (1, 256, True)]


class Affine(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c))
        self.beta = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class Block(nn.Module):
    def __init__(self, cin, c, down):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, c, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.a1 = Affine(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.a2 = Affine(c)

    def forward(self, x):
        m = self.a2(self.conv2(F.relu(self.a1(self.conv1(x)))))
        s = F.avg_pool2d(x, 2, 2) if self.down else x
        n, c, h, w = (max(a, b) for a, b in zip(m.shape, s.shape))
        m = F.pad(m, (0, w - m.shape[3], 0, h - m.shape[2], 0, c - m.shape[1]))
        s = F.pad(s, (0, w - s.shape[3], 0, h - s.shape[2], 0, c - s.shape[1]))
        return F.relu(m + s)


class Resnet29(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        self.stem_affine = Affine(32)
        blocks, cin = [], 32
        for count, c, down in STAGES:
            for i in range(count):
                blocks.append(Block(cin, c, down and i == 0))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def batch_hard(e, labels, margin=0.1):
    d = torch.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1) + 1e-12)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = torch.where(same & ~eye, d, torch.zeros_like(d)).max(1).values
    neg = torch.where(~same, d, torch.full_like(d, 1e9)).min(1).values
    return F.relu(pos - neg + margin).mean()


def main():
    threads, steps = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = Resnet29()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(32, 3, 150, 150) * 2 - 1
    labels = torch.arange(8).repeat_interleave(4)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        opt.zero_grad()
        loss = batch_hard(net(x), labels)
        loss.backward()
        opt.step()
        if i > 0:  # the first step warms up
            times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"seconds_per_step": times[len(times) // 2], "threads": threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
