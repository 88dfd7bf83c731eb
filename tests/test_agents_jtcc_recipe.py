"""The JTCC stage's recipe options (issue 13, Fig. 5's m = 4 level): no link warm-up, a curriculum of
joint epochs at another SNR range, distillation towards the receiver's answers on the clean tokens, and
their command-line flags; every option off by default, so the shipped recipe is unchanged."""

from __future__ import annotations

import argparse
import dataclasses
import shutil

import pytest
import torch

from semcom.agents.checkpoint import load_pipeline, make_link
from semcom.agents.commands import JTCC_RECIPE_FLAGS, _experiment, _experiment_args
from semcom.agents.experiment import AgentsExperiment, checkpoint_path, make_data, train_all, train_stage
from semcom.agents.small import SensorAgent, SmallConfig, TaskAgent, TokenPipeline
from semcom.agents.train import (
    AgentTrainConfig,
    VQATensors,
    alignment_loss,
    clean_token_logits,
    distillation_loss,
    pretrain_link,
    train_token_pipeline,
)
from semcom.data import make_vqa_dataset


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    _experiment_args(p)
    return p


def test_command_line_defaults_keep_the_shipped_jtcc_recipe() -> None:
    assert _experiment(_parser().parse_args([])).jtcc == AgentsExperiment().jtcc


def test_command_line_recipe_flags_set_the_jtcc_stage_only() -> None:
    args = _parser().parse_args(["--jtcc-link-epochs", "0", "--jtcc-sensor-lr-scale", "1", "--jtcc-snr-db",
                                 "10", "20", "--jtcc-distill-weight", "0.5", "--jtcc-distill-temperature",
                                 "2", "--jtcc-curriculum-epochs", "3", "--jtcc-curriculum-snr-db", "15",
                                 "20", "--jtcc-align-weight", "0", "--jtcc-lr", "0.002", "--jtcc-link-target",
                                 "scene"])
    exp = _experiment(args)
    base = AgentsExperiment()
    assert exp.jtcc == dataclasses.replace(base.jtcc, link_epochs=0, sensor_lr_scale=1.0, snr_db=(10.0, 20.0),
                                           distill_weight=0.5, distill_temperature=2.0, curriculum_epochs=3,
                                           curriculum_snr_db=(15.0, 20.0), align_weight=0.0, lr=0.002,
                                           link_target="scene")
    assert exp.tokens == base.tokens  # the raw-token stage keeps its own recipe
    assert {name for name, *_ in JTCC_RECIPE_FLAGS.values()} <= set(AgentTrainConfig.__dataclass_fields__)


def test_train_config_round_trips_and_reads_configs_without_the_new_fields() -> None:
    cfg = AgentTrainConfig(curriculum_epochs=2, curriculum_snr_db=(12.0, 18.0), distill_weight=0.3)
    assert AgentTrainConfig.from_dict(cfg.to_dict()) == cfg
    old = AgentTrainConfig().to_dict()
    for name in ("distill_weight", "distill_temperature", "curriculum_epochs", "curriculum_snr_db"):
        old.pop(name)
    assert AgentTrainConfig.from_dict(old) == AgentTrainConfig()


def test_distillation_is_zero_when_the_student_is_the_teacher_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    teacher = torch.randn(6, 9)
    for t in (1.0, 2.0):
        assert float(distillation_loss(teacher.clone(), teacher, t)) == pytest.approx(0.0, abs=1e-6)
        # A constant added to a row of logits is the same distribution.
        shifted = teacher + torch.arange(6.0).unsqueeze(1)
        assert float(distillation_loss(shifted, teacher, t)) == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(6, 9, requires_grad=True)
    loss = distillation_loss(student, teacher)
    probs_t, log_s = teacher.softmax(-1), student.detach().log_softmax(-1)
    expected = (probs_t * (probs_t.log() - log_s)).sum(-1).mean()  # KL(teacher || student), per question
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5) and float(loss.detach()) > 0
    loss.backward()  # the gradient reaches the student only
    assert student.grad is not None and student.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def tiny():
    """A tiny split, a receiver and a sensor + JTCC pipeline (untrained: the behaviour is what counts)."""
    train = make_vqa_dataset(n_scenes=30, questions_per_scene=4, seed=3, image_size=64)[0]
    cfg = SmallConfig(vocab=list(train.vocab.itos), answers=list(train.answers.itos), d=32, heads=2, ff=64,
                      rx_layers=1, tx_layers=1, k_tokens=3)
    return VQATensors.from_dataset(train), cfg


def test_clean_token_logits_are_the_receiver_on_the_sensor_tokens_without_the_link(tiny) -> None:
    data, cfg = tiny
    torch.manual_seed(0)
    pipe = TokenPipeline(SensorAgent(cfg), make_link("jtcc", cfg.d, 4, 16), TaskAgent(cfg)).eval()
    logits = clean_token_logits(pipe, data, batch_size=7)
    assert logits.shape == (len(data), len(cfg.answers))
    b = data.batch(torch.arange(len(data)))
    with torch.no_grad():
        direct = pipe.receiver(pipe.sensor(b["image"], b["vague"]), None, b["question"])
    torch.testing.assert_close(logits, direct)
    with torch.no_grad():  # another link does not change the teacher: it never goes through the link
        for p in pipe.link.parameters():
            p.add_(1.0)
    torch.testing.assert_close(clean_token_logits(pipe, data), direct)


def test_distillation_pulls_the_answers_towards_the_teacher(tiny) -> None:
    """With a heavy distillation weight and a teacher that always answers class c, training makes the
    pipeline answer c far more often; without it (weight 0) the teacher is ignored."""
    data, cfg = tiny
    target = int(torch.bincount(data.answer, minlength=len(cfg.answers)).argmin())  # the rarest answer
    teacher = torch.full((len(data), len(cfg.answers)), -10.0)
    teacher[:, target] = 10.0

    everything = data.batch(torch.arange(len(data)))

    def share_of_target(weight: float) -> float:
        torch.manual_seed(0)
        pipe = TokenPipeline(SensorAgent(cfg), make_link("jtcc", cfg.d, 4, 16), TaskAgent(cfg))
        run = AgentTrainConfig(epochs=15, batch_size=40, lr=3e-3, snr_db=(20.0, 20.0), align_weight=0.0,
                               distill_weight=weight)
        # The receiver is frozen, so only the transmitter + link can move the answers.
        train_token_pipeline(pipe, data, None, run, progress=False, teacher_logits=teacher)
        with torch.no_grad():
            answers = pipe.eval()(everything["image"], everything["vague"], everything["question"])
        return float((answers.argmax(-1) == target).float().mean())

    with_teacher, without = share_of_target(20.0), share_of_target(0.0)
    assert with_teacher > without + 0.3, (with_teacher, without)


def test_the_scene_link_target_fits_the_receivers_tokens_and_the_default_the_transmitters(tiny) -> None:
    """The link-only warm-up with ``link_target="scene"`` brings the decoded tokens towards the
    receiver's own tokens for the scene (its loss), more than the reconstruction warm-up does; the
    default reconstructs the transmitter's tokens."""
    data, cfg = tiny
    b = data.batch(torch.arange(len(data)))

    def warmed_up(target: str) -> tuple[float, float]:
        torch.manual_seed(0)
        pipe = TokenPipeline(SensorAgent(cfg), make_link("jtcc", cfg.d, 4, 32), TaskAgent(cfg))
        warm_up = AgentTrainConfig(epochs=30, batch_size=40, lr=3e-3, link_target=target)
        pretrain_link(pipe, data, None, warm_up, progress=False)
        with torch.no_grad():
            tokens = pipe.sensor(b["image"], b["vague"])
            decoded = pipe.link(tokens)
            reconstruction = float((decoded - tokens).pow(2).sum() / tokens.pow(2).sum())
            return reconstruction, float(alignment_loss(decoded, pipe.receiver, b["scene"]))

    recon_tokens, align_tokens = warmed_up("tokens")
    recon_scene, align_scene = warmed_up("scene")
    assert align_scene < 0.8 * align_tokens, (align_scene, align_tokens)
    assert recon_tokens < 0.8 * recon_scene, (recon_tokens, recon_scene)
    with pytest.raises(ValueError, match="link_target"):
        warmed_up("pixels")


@pytest.fixture(scope="module")
def trained_tokens(tmp_path_factory):
    """A tiny experiment with the stages the JTCC stage starts from (vision, receiver, raw tokens)."""
    one = AgentTrainConfig(epochs=1, batch_size=32)
    exp = AgentsExperiment(n_scenes=20, questions_per_scene=3, d=32, n_val=10, pretrain_scenes=0, jtcc_m=4,
                           tx_layers=1, vision=one, receiver=one, tokens=one,
                           jtcc=dataclasses.replace(one, link_epochs=1))
    data = make_data(exp, progress=False)
    ckdir = tmp_path_factory.mktemp("ck")
    train_all(exp, ckdir, stages=("vision", "receiver", "tokens"), progress=False, data=data)
    return exp, data, ckdir


def _jtcc_history(trained_tokens, tmp_path, monkeypatch=None, **recipe) -> list[dict]:
    exp, data, ckdir = trained_tokens
    run_dir = tmp_path / "run"
    shutil.copytree(ckdir, run_dir)
    run = dataclasses.replace(exp, jtcc=dataclasses.replace(exp.jtcc, **recipe))
    return train_stage(run, "jtcc", data, run_dir, progress=False)["history"]


def test_link_epochs_zero_skips_the_reconstruction_warm_up(trained_tokens, tmp_path, monkeypatch) -> None:
    from semcom.agents import experiment as ex

    calls = []
    real = ex.pretrain_link
    monkeypatch.setattr(ex, "pretrain_link", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    with_warm_up = _jtcc_history(trained_tokens, tmp_path / "a", link_epochs=1)
    assert [h.get("phase", "task") for h in with_warm_up] == ["link", "task"] and calls == [1]
    without = _jtcc_history(trained_tokens, tmp_path / "b", link_epochs=0)
    assert [h.get("phase", "task") for h in without] == ["task"] and calls == [1]


def test_curriculum_runs_its_epochs_first_at_its_own_snr(trained_tokens, tmp_path, monkeypatch) -> None:
    from semcom.agents import experiment as ex

    seen: list[tuple[int, tuple[float, float], bool]] = []
    real = ex.train_token_pipeline

    def spy(pipeline, data, channel, cfg, *a, teacher_logits=None, **kw):
        seen.append((cfg.epochs, cfg.snr_db, teacher_logits is not None))
        return real(pipeline, data, channel, cfg, *a, teacher_logits=teacher_logits, **kw)

    monkeypatch.setattr(ex, "train_token_pipeline", spy)
    hist = _jtcc_history(trained_tokens, tmp_path, link_epochs=0, epochs=1, curriculum_epochs=2,
                         curriculum_snr_db=(18.0, 20.0), snr_db=(0.0, 20.0), distill_weight=0.5)
    assert [h.get("phase", "task") for h in hist] == ["curriculum", "curriculum", "task"]
    # Both phases distil towards the same teacher, computed once from the transmitter as it started.
    assert seen == [(2, (18.0, 20.0), True), (1, (0.0, 20.0), True)]
    exp, _, ckdir = trained_tokens
    pipe, _ = load_pipeline(checkpoint_path(tmp_path / "run", "jtcc"))
    assert pipe.link.m == 4 and pipe.link.d == exp.d
