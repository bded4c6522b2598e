"""A plain single-file PyTorch semi-supervised feature-matching GAN after the Improved GAN paper's MNIST
code (openai/improved-gan, ``mnist_svhn_cifar10/train_mnist_feature_matching.py`` and its ``nn.py``):
the reference that rlgen's ``improved_gan`` (``bench/images.py``, 100 labels) is measured against.

Usage (from the repository root)::

    python bench/plain_ssl_gan.py                                  # 300 epochs, seed 0, one thread
    python bench/plain_ssl_gan.py --epochs 1 --eval-every 1        # a smoke test, seconds
    python bench/plain_ssl_gan.py --seed 1 --out plain-ssl-s1.json

Data: rlgen's own ``mnist5k`` split (:func:`rlgen.gen.data.load_data`), so the 4,000 training and
1,000 test images and the 100 labelled ones (10 per digit, picked by ``--seed``) are exactly those
of an rlgen run with ``trainer.seed = --seed`` and ``data.labels_per_class = 10``.

What the original does, and so this script (its MNIST settings, nothing tuned here):

* generator: ``z ~ U(0, 1)^100`` -> dense 500 -> batch norm with a learnable shift and *no* scale
  -> softplus, twice -> weight-normed dense 784 (trainable scale) -> sigmoid. Its batch norm
  always uses the batch's statistics (the original never samples in deterministic mode).
* discriminator: Gaussian noise (std 0.3) on the input, then dense 1000, 500, 250, 250, 250 with
  ReLU, each preceded by noise of std 0.5 (so is the output layer), then dense 10 (the logits of
  the K real classes; the fake class has a fixed logit 0). Every layer is weight-normed with
  ``v ~ N(0, 0.1^2)``; the hidden layers' scales are *not* trained, only the output layer's.
* data-dependent init: one pass over 500 training images (noise on) sets each layer's scale and
  bias so its pre-activations have mean 0 and std 1 per unit.
* losses: cross-entropy of the labelled batch over the 10 logits; the unlabelled loss
  ``-0.5 mean lse(unl) + 0.5 mean softplus(lse(unl)) + 0.5 mean softplus(lse(fake))``
  (half the K+1 GAN loss), weight 1; the generator matches the batch means of the last hidden
  layer (the 250 ReLU units, before the output layer's noise), mean squared difference, on a
  second unlabelled batch and fresh noise, not the discriminator step's.
* Adam (lr 0.003 constant, beta1 0.5, beta2 0.999) with the 1e-8 *inside* the square root.
* batches: every step one batch of 100 unlabelled images (all 4,000 training images, labels
  unused, in a fresh order each epoch), the 100 labelled images (the labelled set tiled and
  shuffled once per copy, so with 100 labels each step sees all of them), and for the generator
  another 100 unlabelled images from a second independent order; 40 steps an epoch.
* test accuracy of a moving average of the discriminator's trained parameters,
  ``avg <- avg + 1e-4 (p - avg)`` after every step, started from *zeros* and not bias-corrected,
  with the noise off. Under weight norm that only shrinks the biases and the output scale by
  ``1 - 0.9999^t`` (0.70 after 12,000 steps), which is not harmless to the hidden layers; the
  curve also reports the bias-corrected average and the current weights beside it.

Printed and written (``--out``): the test-accuracy curve (epoch, step, accuracy the original's way,
``accuracy_debiased``, ``accuracy_current``, the epoch's mean losses), wall time and images/s
(unlabelled images of the discriminator's batches per second of training, evaluation excluded).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlgen.gen.base import DataConfig
from rlgen.gen.data import load_data

#: Labelled training images per digit (100 labels in all), as in bench/images.py.
LABELS_PER_CLASS = 10
BATCH_SIZE = 100
LATENT_DIM = 100
#: Training images of the data-dependent init (the original's ``trainx[:500]``).
INIT_EXAMPLES = 500
LR = 3e-3
#: Step of the test-time moving average: ``avg += AVG_RATE * (p - avg)`` (decay 0.9999).
AVG_RATE = 1e-4


class WeightNormDense(nn.Module):
    """Dense layer with ``W = g * v / ||v||`` per output unit (the original's ``DenseLayer`` and ``l2normalize``).

    ``g`` starts at 1 and is a parameter only with ``train_scale``; otherwise a buffer that only
    :meth:`forward` with ``init=True`` changes. ``eps`` is added under the norm's square root
    (the original's ``l2normalize``, on the generator's output layer, adds 1e-6).
    """

    def __init__(self, n_in: int, n_out: int, *, train_scale: bool, init_std: float | None = 0.1,
                 eps: float = 0.0) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.empty(n_out, n_in))
        if init_std is None:
            nn.init.xavier_uniform_(self.v)  # Lasagne's GlorotUniform
        else:
            nn.init.normal_(self.v, 0.0, init_std)
        if train_scale:
            self.g = nn.Parameter(torch.ones(n_out))
        else:
            self.register_buffer("g", torch.ones(n_out))
        self.b = nn.Parameter(torch.zeros(n_out))
        self.eps = eps

    def forward(self, x: Tensor, init: bool = False) -> Tensor:
        """``(B, n_in) -> (B, n_out)``; with ``init``, set ``g`` and ``b`` from this batch and return
        its pre-activations normalised to mean 0 and std 1 per unit."""
        norm = torch.sqrt(self.v.pow(2).sum(1) + self.eps)  # (n_out,)
        a = F.linear(x, self.v * (self.g / norm)[:, None])  # (B, n_out), no bias yet
        if not init:
            return a + self.b
        with torch.no_grad():
            mean = a.mean(0)
            std = (a - mean).pow(2).mean(0).sqrt()  # population std, as the original
            self.g.div_(std)
            self.b.copy_(-mean / std)
        return (a - mean) / std


class Generator(nn.Module):
    """``z (B, 100) -> images (B, 784)`` in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(LATENT_DIM, 500, bias=False)
        self.fc2 = nn.Linear(500, 500, bias=False)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
        # Batch norm without a scale; the shift is the layer's only bias. Always batch statistics.
        self.bn1 = nn.BatchNorm1d(500, eps=1e-6, affine=False, track_running_stats=False)
        self.bn2 = nn.BatchNorm1d(500, eps=1e-6, affine=False, track_running_stats=False)
        self.shift1 = nn.Parameter(torch.zeros(500))
        self.shift2 = nn.Parameter(torch.zeros(500))
        self.out = WeightNormDense(500, 28 * 28, train_scale=True, init_std=None, eps=1e-6)

    def forward(self, z: Tensor) -> Tensor:
        h = F.softplus(self.bn1(self.fc1(z)) + self.shift1)
        h = F.softplus(self.bn2(self.fc2(h)) + self.shift2)
        return torch.sigmoid(self.out(h))


class Discriminator(nn.Module):
    """``images (B, 784) -> logits (B, 10)``, Gaussian noise before every layer in training mode."""

    def __init__(self, widths: tuple[int, ...] = (1000, 500, 250, 250, 250)) -> None:
        super().__init__()
        dims = (28 * 28, *widths)
        self.hidden = nn.ModuleList(WeightNormDense(a, b, train_scale=False) for a, b in zip(dims, dims[1:]))
        self.head = WeightNormDense(widths[-1], 10, train_scale=True)

    def noise(self, x: Tensor, std: float) -> Tensor:
        return x + std * torch.randn_like(x) if self.training else x

    def features(self, x: Tensor, init: bool = False) -> Tensor:
        """The last hidden layer ``(B, 250)``, which feature matching compares."""
        h = self.noise(x, 0.3)
        for i, layer in enumerate(self.hidden):
            h = F.relu(layer(h if i == 0 else self.noise(h, 0.5), init))
        return h

    def forward(self, x: Tensor, init: bool = False) -> Tensor:
        return self.head(self.noise(self.features(x, init), 0.5), init)


class TheanoAdam(torch.optim.Optimizer):
    """Adam as the original's ``nn.adam_updates``: ``p -= lr * m_hat / sqrt(v_hat + eps)``, eps under the root.

    PyTorch's Adam adds its eps outside the root, ``m_hat / (sqrt(v_hat) + eps)``.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.5, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["t"] = 0
                    state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                state["t"] += 1
                m, v, t = state["m"], state["v"], state["t"]
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v / (1 - b2**t)).add_(group["eps"]).sqrt_()
                p.addcdiv_(m, denom, value=-group["lr"] / (1 - b1**t))


class WeightAverage:
    """The original's test-time weights: ``avg += rate * (p - avg)`` from zeros, no bias correction.

    Only trained parameters are averaged; the hidden layers' fixed scales (buffers) are taken as
    they are, as the original averages ``get_all_params(trainable=True)`` only.
    """

    def __init__(self, net: nn.Module, rate: float) -> None:
        self.net = copy.deepcopy(net).requires_grad_(False)
        for p in self.net.parameters():
            p.zero_()
        self.rate, self.updates = rate, 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for avg, p in zip(self.net.parameters(), net.parameters()):
            avg.lerp_(p, self.rate)
        self.updates += 1

    @torch.no_grad()
    def debiased(self) -> nn.Module:
        """The same average divided by its total weight ``1 - (1 - rate)^updates``."""
        net = copy.deepcopy(self.net)
        for p in net.parameters():
            p.div_(1 - (1 - self.rate) ** self.updates)
        return net


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    """Test accuracy with the noise off."""
    was_training = net.training
    net.eval()
    acc = (net(x).argmax(1) == y).float().mean().item()
    net.train(was_training)
    return acc


def load_mnist5k(seed: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``x_train (4000, 784)``, labelled ``x_lab (100, 784)`` and ``y_lab``, ``x_test (1000, 784)`` and ``y_test``."""
    cfg = DataConfig(dataset="mnist5k", labels_per_class=LABELS_PER_CLASS)
    train, _ = load_data(cfg, split="train", seed=seed)
    test, _ = load_data(cfg, split="test", seed=seed)
    x_train, y_train = train.tensors
    x_test, y_test = test.tensors
    lab = y_train >= 0
    x_train, x_test = x_train.flatten(1).to(device), x_test.flatten(1).to(device)
    return x_train, x_train[lab.to(device)], y_train[lab].to(device), x_test, y_test.to(device)


def train(args: argparse.Namespace, device: torch.device) -> dict:
    """Train for ``args.epochs`` epochs; the test-accuracy curve, timings and settings."""
    torch.manual_seed(args.seed)
    x_train, x_lab, y_lab, x_test, y_test = load_mnist5k(args.seed, device)
    n_train, n_lab = len(x_train), len(x_lab)
    steps_per_epoch = n_train // BATCH_SIZE
    gen, disc = Generator().to(device), Discriminator().to(device)
    with torch.no_grad():
        disc(x_train[torch.randperm(n_train, device=device)[:INIT_EXAMPLES]], init=True)
    average = WeightAverage(disc, AVG_RATE)
    opt_d = TheanoAdam(disc.parameters(), lr=LR)
    opt_g = TheanoAdam(gen.parameters(), lr=LR)

    curve: list[dict] = []
    step, train_time = 0, 0.0
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        # The labelled set tiled to the epoch's length, each copy in its own order; two unlabelled orders.
        tiles = [torch.randperm(n_lab, device=device) for _ in range(n_train // n_lab)]
        lab_order = torch.cat(tiles)
        unl_order, unl2_order = torch.randperm(n_train, device=device), torch.randperm(n_train, device=device)
        sums = torch.zeros(4, device=device)  # loss_lab, loss_unl, loss_gen, train error
        for t in range(steps_per_epoch):
            batch = slice(t * BATCH_SIZE, (t + 1) * BATCH_SIZE)
            xl, yl = x_lab[lab_order[batch]], y_lab[lab_order[batch]]
            xu, xu2 = x_train[unl_order[batch]], x_train[unl2_order[batch]]

            # Discriminator: labelled cross-entropy plus half the K+1 GAN loss on unlabelled and fake images.
            with torch.no_grad():
                fake = gen(torch.rand(BATCH_SIZE, LATENT_DIM, device=device))
            out_lab, out_unl, out_fake = disc(xl), disc(xu), disc(fake)
            loss_lab = F.cross_entropy(out_lab, yl)
            lse_unl, lse_fake = out_unl.logsumexp(1), out_fake.logsumexp(1)
            loss_unl = -0.5 * lse_unl.mean() + 0.5 * F.softplus(lse_unl).mean() + 0.5 * F.softplus(lse_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            (loss_lab + loss_unl).backward()
            average.update(disc)  # from the weights before this step, as the original's simultaneous updates
            opt_d.step()

            # Generator: match the mean last-hidden features of another unlabelled batch, with fresh noise.
            disc.requires_grad_(False)
            with torch.no_grad():
                f_real = disc.features(xu2).mean(0)
            f_fake = disc.features(gen(torch.rand(BATCH_SIZE, LATENT_DIM, device=device))).mean(0)
            loss_gen = (f_fake - f_real).pow(2).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_gen.backward()
            opt_g.step()
            disc.requires_grad_(True)

            err = (out_lab.argmax(1) != yl).float().mean()
            sums += torch.stack([loss_lab.detach(), loss_unl.detach(), loss_gen.detach(), err])
            step += 1
        train_time += time.perf_counter() - epoch_start

        if epoch % args.eval_every == 0 or epoch == args.epochs:
            means = (sums / steps_per_epoch).tolist()
            point = {
                "epoch": epoch, "step": step,
                "accuracy": accuracy(average.net, x_test, y_test),
                "accuracy_debiased": accuracy(average.debiased(), x_test, y_test),
                "accuracy_current": accuracy(disc, x_test, y_test),
                "loss_lab": means[0], "loss_unl": means[1], "loss_gen": means[2], "train_err": means[3],
            }
            curve.append(point)
            print(f"epoch {epoch:4d} step {step:6d}  test acc {point['accuracy']:.4f} "
                  f"(debiased avg {point['accuracy_debiased']:.4f}, current {point['accuracy_current']:.4f})  "
                  f"loss_lab {means[0]:.4f} loss_unl {means[1]:.4f} loss_gen {means[2]:.4f} "
                  f"train err {means[3]:.4f}  [{time.perf_counter() - start:.0f}s]", flush=True)

    wall = time.perf_counter() - start
    return {
        "curve": curve, "final_accuracy": curve[-1]["accuracy"] if curve else None,
        "epochs": args.epochs, "steps": step, "steps_per_epoch": steps_per_epoch, "batch_size": BATCH_SIZE,
        "labelled": n_lab, "train_images": n_train, "test_images": len(x_test),
        "wall_time_s": wall, "train_time_s": train_time, "images_per_s": step * BATCH_SIZE / train_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=300, help="passes over the 4,000 training images (default 300)")
    parser.add_argument("--seed", type=int, default=0,
                        help="picks the 100 labelled images (as rlgen's trainer.seed) and seeds everything else")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--eval-every", type=int, default=25, help="epochs between test evaluations (and the last)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    parser.add_argument("--out", help="write the curve and timings to this JSON file")
    args = parser.parse_args()
    if args.epochs < 1 or args.eval_every < 1:
        parser.error("--epochs and --eval-every must be at least 1")
    torch.set_num_threads(args.torch_threads)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    result = train(args, device)
    print(f"final test accuracy {result['final_accuracy']:.4f} after {result['epochs']} epochs ({result['steps']} "
          f"steps); wall {result['wall_time_s']:.1f}s, {result['images_per_s']:.0f} images/s", flush=True)
    if args.out:
        result |= {
            "command": "python bench/plain_ssl_gan.py " + shlex.join(sys.argv[1:]), "seed": args.seed,
            "device": str(device), "torch_threads": args.torch_threads, "python": platform.python_version(),
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
