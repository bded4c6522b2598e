from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from rlgen.checkpoint import load_checkpoint, save_checkpoint
from rlgen.core.trainer import Trainer, TrainableModel, TrainerConfig
from rlgen.errors import CheckpointError, NonFiniteError

DIM = 4


@dataclasses.dataclass
class TinyConfig:
    hidden: int = 2
    lr: float = 0.05
    sizes: tuple[int, ...] = (4, 2)


class TinyAutoencoder(nn.Module):
    """A denoising linear autoencoder: the noise makes resume depend on the restored RNG."""

    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.nan_at: int | None = None  # step index whose loss comes back NaN
        self.signal_at: tuple[int, int] | None = None  # (step index, signal) sent to ourselves
        self.enc = nn.Linear(DIM, cfg.hidden)
        self.dec = nn.Linear(cfg.hidden, DIM)
        self.seen: list[Tensor] = []

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "enc": torch.optim.Adam(self.enc.parameters(), self.cfg.lr),
            "dec": torch.optim.Adam(self.dec.parameters(), self.cfg.lr),
        }

    def loss(self, x: Tensor) -> Tensor:
        return ((self.dec(self.enc(x)) - x) ** 2).mean()

    def train_step(self, batch, optimizers, step: int) -> dict[str, Tensor | float]:
        x = batch[0] if isinstance(batch, list) else batch  # (B, DIM)
        self.seen.append(x.clone())
        noisy = x + 0.1 * torch.randn_like(x)
        loss = ((self.dec(self.enc(noisy)) - x) ** 2).mean()
        for opt in optimizers.values():
            opt.zero_grad()
        loss.backward()
        for opt in optimizers.values():
            opt.step()
        if self.signal_at is not None and step == self.signal_at[0]:
            os.kill(os.getpid(), self.signal_at[1])
        if self.nan_at is not None and step == self.nan_at:
            return {"loss/recon": float("nan"), "loss/other": 1.0}
        return {"loss/recon": loss.detach(), "loss/other": 1.0}

    def sample(self, n: int) -> Tensor:
        z = torch.randn(n, self.cfg.hidden)
        return torch.sigmoid(self.dec(z)).view(n, 1, 2, 2)  # (N, C, H, W)

    def evaluate(self, data) -> dict[str, float]:
        losses = [self.loss(x[0]).item() for x in data]
        return {"recon": sum(losses) / len(losses)}


def _data(n: int = 40) -> TensorDataset:
    g = torch.Generator().manual_seed(123)
    return TensorDataset(torch.randn(n, DIM, generator=g))


def _trainer(run_dir: Path, *, resume: bool = False, model_cfg: TinyConfig | None = None, data=None, **overrides):
    defaults = dict(epochs=2, batch_size=8, seed=7, log_every=2, sample_every=0, checkpoint_every=1000, progress=False)
    cfg = TrainerConfig(**{**defaults, **overrides})
    torch.manual_seed(0)  # same initial weights for every run
    model_cfg = model_cfg or TinyConfig()
    return Trainer(
        model=TinyAutoencoder(model_cfg),
        train_data=_data() if data is None else data,
        config=cfg,
        run_dir=run_dir,
        test_data=_data(16),
        model_config=model_cfg,
        kind="tiny",
        resume=resume,
    )


def _params(trainer: Trainer) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def _assert_same_params(a: Trainer, b: Trainer) -> None:
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k


def test_models_implement_the_protocol_with_its_signatures() -> None:
    """isinstance on a runtime Protocol only checks that the names exist; the Trainer calls
    ``train_step(batch, optimizers, step)`` and ``configure_optimizers()``, so check the parameters
    of the tiny model here and of every image model."""
    import rlgen.gen.models  # noqa: F401  (defines every image model)
    from rlgen.gen.base import GenerativeModel

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in [sub, *subclasses(sub)]]

    def params(fn: Any) -> list[str]:
        return [p for p in inspect.signature(fn).parameters if p != "self"]

    models = [TinyAutoencoder, *subclasses(GenerativeModel)]
    assert {"VAE", "DCGAN", "InfoGAN", "ImprovedGAN", "PixelCNN", "PixelRNN"} <= {c.__name__ for c in models}
    for cls in models:
        for name in ("configure_optimizers", "train_step"):
            assert params(getattr(cls, name)) == params(getattr(TrainableModel, name)), (cls.__name__, name)
    assert isinstance(TinyAutoencoder(TinyConfig()), TrainableModel)
    assert not isinstance(nn.Linear(2, 2), TrainableModel)


def test_fit_trains_and_writes_run_outputs(tmp_path) -> None:
    trainer = _trainer(tmp_path, epochs=6, sample_every=5, eval_every=2)
    x = _data().tensors[0]
    before = trainer.model.loss(x).item()
    summary = trainer.fit()
    assert trainer.model.loss(x).item() < before
    assert summary["steps"] == 30.0 and summary["epochs"] == 6.0  # 40 examples / 8 per batch * 6
    assert summary["test/recon"] > 0 and summary["loss/other"] == 1.0 and summary["wall_time_s"] > 0
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written.pop("provenance")["versions"]["torch"] == torch.__version__  # what made the run, kept beside it
    assert written == pytest.approx(summary)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    samples = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert samples == [f"step_{s:06d}.png" for s in (5, 10, 15, 20, 25, 30)]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt", kind="tiny")
    assert state["step"] == 30 and state["epoch"] == 6 and state["batch_in_epoch"] == 0
    assert set(state["optimizers"]) == {"enc", "dec"}
    assert state["model_config"] == dataclasses.asdict(TinyConfig())
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(state["model"][k], v)


def test_tensorboard_scalars_use_the_given_names(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _trainer(tmp_path, epochs=1, sample_every=5).fit()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert {"loss/recon", "loss/other", "perf/images_per_s", "test/recon"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/recon")] == [2, 4]
    assert "samples" in acc.Tags()["images"]


def test_raw_tensor_dataset_without_drop_last(tmp_path) -> None:
    trainer = _trainer(tmp_path, epochs=1, batch_size=16, data=_data().tensors[0])
    assert trainer.fit()["steps"] == 3.0  # 16 + 16 + 8
    assert [len(x) for x in trainer.model.seen] == [16, 16, 8]


def test_sampling_does_not_change_training(tmp_path) -> None:
    a = _trainer(tmp_path / "a", sample_every=1)
    b = _trainer(tmp_path / "b", sample_every=0)
    a.fit(), b.fit()
    _assert_same_params(a, b)


@pytest.mark.parametrize("stop_after", [3, 5, 7])  # mid-epoch, epoch boundary, mid second epoch
def test_resume_matches_an_uninterrupted_run(tmp_path, stop_after: int) -> None:
    straight = _trainer(tmp_path / "straight")
    expected = straight.fit()

    first = _trainer(tmp_path / "resumed", max_steps=stop_after)
    assert first.fit()["steps"] == stop_after
    second = _trainer(tmp_path / "resumed", resume=True)
    summary = second.fit()

    assert summary["steps"] == expected["steps"] == 10.0 and second.step == straight.step
    _assert_same_params(straight, second)
    # No batch repeated or skipped: the two halves see exactly the straight run's batches.
    seen = first.model.seen + second.model.seen
    assert len(seen) == len(straight.model.seen)
    assert all(torch.equal(a, b) for a, b in zip(seen, straight.model.seen))


def test_each_epoch_has_its_own_order(tmp_path) -> None:
    trainer = _trainer(tmp_path)
    trainer.fit()
    epoch0, epoch1 = torch.cat(trainer.model.seen[:5]), torch.cat(trainer.model.seen[5:])
    assert not torch.equal(epoch0, epoch1)
    assert torch.equal(epoch0.sort(0).values, epoch1.sort(0).values)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_cleanly_and_resume_matches(tmp_path, signum: int) -> None:
    from rlgen.errors import Interrupted

    straight = _trainer(tmp_path / "straight")
    straight.fit()

    old = signal.getsignal(signum)
    interrupted = _trainer(tmp_path / "run")
    interrupted.model.signal_at = (3, signum)  # raised inside step index 3, which still completes
    with pytest.raises(Interrupted) as info:
        interrupted.fit()
    assert info.value.exit_code == 128 + signum and "step 4" in str(info.value)
    assert signal.getsignal(signum) is old
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", kind="tiny")["step"] == 4
    assert not (tmp_path / "run" / "summary.json").exists()

    resumed = _trainer(tmp_path / "run", resume=True)
    assert resumed.fit()["steps"] == 10.0
    _assert_same_params(straight, resumed)


def test_non_finite_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    trainer = _trainer(tmp_path, checkpoint_every=2)
    trainer.model.nan_at = 4  # 0-based index: the fifth step
    with pytest.raises(NonFiniteError) as info:
        trainer.fit()
    message = str(info.value)
    path = tmp_path / "checkpoints" / "last.pt"
    assert "'loss/recon'" in message and "step 5" in message and str(path) in message and "\n" not in message
    assert load_checkpoint(path, kind="tiny")["step"] == 4
    # The good checkpoint resumes; without the NaN the run completes.
    assert _trainer(tmp_path, resume=True, checkpoint_every=2).fit()["steps"] == 10.0


def test_non_finite_before_any_checkpoint_says_so(tmp_path) -> None:
    trainer = _trainer(tmp_path)
    trainer.model.nan_at = 0
    with pytest.raises(NonFiniteError, match="none written yet"):
        trainer.fit()
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_resume_with_a_different_model_config_is_refused(tmp_path) -> None:
    _trainer(tmp_path, max_steps=2).fit()
    other = TinyConfig(lr=0.1, sizes=(4, 3))
    with pytest.raises(CheckpointError, match=r"keys differ: lr, sizes") as info:
        _trainer(tmp_path, resume=True, model_cfg=other).fit()
    assert "\n" not in str(info.value)


def test_a_setting_added_since_the_checkpoint_resumes_at_its_default_only(tmp_path) -> None:
    _trainer(tmp_path, max_steps=2).fit()
    path = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(path, kind="tiny")
    del state["model_config"]["hidden"]  # as if made before TinyConfig had it
    save_checkpoint(path, kind="tiny", state=state)
    with pytest.raises(CheckpointError, match=r"keys differ: hidden\)"):
        _trainer(tmp_path, resume=True, max_steps=4, model_cfg=TinyConfig(hidden=3)).fit()
    assert _trainer(tmp_path, resume=True, max_steps=4).fit()["steps"] == 4.0


def test_resume_with_a_different_batch_size_is_refused(tmp_path) -> None:
    _trainer(tmp_path, max_steps=2).fit()
    with pytest.raises(CheckpointError, match="batch_size=8, now 4"):
        _trainer(tmp_path, resume=True, batch_size=4).fit()


def test_resume_from_a_truncated_checkpoint_is_refused(tmp_path) -> None:
    _trainer(tmp_path, max_steps=2).fit()
    path = tmp_path / "checkpoints" / "last.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        _trainer(tmp_path, resume=True).fit()


def test_resume_without_a_checkpoint_is_refused(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        _trainer(tmp_path, resume=True).fit()
