"""A plain single-file PyTorch DCGAN with the layer shapes of rlgen's default DCGAN for 28x28x1:
the reference that ``bench/images.py`` measures rlgen's training throughput against."""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn


class PlainGenerator(nn.Module):
    """The layer shapes of rlgen's default DCGAN generator for 28x28x1, written out by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(100, 128 * 7 * 7, bias=False), nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),  # 14x14
            nn.ConvTranspose2d(64, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),  # 28x28
            nn.Conv2d(64, 1, 3, 1, 1), nn.Sigmoid(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class PlainDiscriminator(nn.Module):
    """The layer shapes of rlgen's default DCGAN discriminator for 28x28x1; outputs logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 14x14
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),  # 7x7
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(-1)


def weights_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def plain_dcgan(x_train: Tensor, *, steps: int, batch_size: int, seed: int, device: torch.device) -> float:
    """Images/s of a minimal DCGAN loop over ``x_train`` (epochs of shuffled batches, the last one smaller)."""
    torch.manual_seed(seed)
    netG, netD = PlainGenerator().to(device), PlainDiscriminator().to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCEWithLogitsLoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    done = images = 0
    start = time.perf_counter()
    while done < steps:
        perm = torch.randperm(len(x_train))
        for i in range(0, len(x_train), batch_size):
            real = x_train[perm[i : i + batch_size]].to(device)
            b = real.shape[0]
            ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
            fake = netG(torch.randn(b, 100, device=device))
            optD.zero_grad()
            loss_d = criterion(netD(real), ones) + criterion(netD(fake.detach()), zeros)
            loss_d.backward()
            optD.step()
            optG.zero_grad()
            loss_g = criterion(netD(fake), ones)
            loss_g.backward()
            optG.step()
            done, images = done + 1, images + b
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)
