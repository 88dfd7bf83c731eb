"""The shipped small-default checkpoints (host/semcom/agents/checkpoints, trained by the command in
experiments/agents/README.md) do what the experiment measured, on the test split regenerated from the
seed they record: the frozen receiver answers >= 95 % from ground-truth scene descriptions, the
machine-token pipeline with JTCC answers from 80 channel values per question over AWGN, and at 15 dB
it is at least as accurate as the raw-image VQA model given the clean image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semcom.agents.checkpoint import load_pipeline, load_raw_vqa, load_receiver
from semcom.agents.experiment import AgentsExperiment, make_data
from semcom.agents.train import accuracy, evaluate_pipeline, receiver_logits
from semcom.channels import named_channel

SHIPPED = Path(__file__).resolve().parents[1] / "host/semcom/agents/checkpoints"
SUMMARY = Path(__file__).resolve().parents[1] / "experiments/agents/output/summary.json"


@pytest.fixture(scope="module")
def data():
    _, doc = load_receiver(SHIPPED / "receiver")
    return make_data(AgentsExperiment.from_dict(doc["meta"]["experiment"]), progress=False,
                     pretrain=False)


@pytest.fixture(scope="module")
def jtcc_at_15db(data) -> tuple[object, float]:
    """The shipped JTCC pipeline and its accuracy on 2 000 test questions over AWGN at 15 dB, evaluated
    once for the two tests that read it."""
    pipeline, _ = load_pipeline(SHIPPED / "tokens_jtcc")
    at15 = evaluate_pipeline(pipeline, data.test.subset(2000), named_channel("awgn", seed=1), 15.0,
                             seed=1)["all"]
    return pipeline, at15


def test_shipped_receiver_answers_95_percent_from_ground_truth(data) -> None:
    receiver, doc = load_receiver(SHIPPED / "receiver")
    acc = accuracy(lambda b: receiver_logits(receiver, b, "scene"), data.test.subset(2000))
    assert acc["all"] >= 0.95, acc
    assert all(acc[f] > 0.8 for f in data.test.families), acc


def test_shipped_jtcc_pipeline_matches_the_recorded_accuracy(data, jtcc_at_15db) -> None:
    pipeline, at15 = jtcc_at_15db
    assert pipeline.link.m * pipeline.sensor.cfg.k_tokens == 80
    test = data.test.subset(2000)
    recorded = json.loads(SUMMARY.read_text())["acceptance"]["tokens_jtcc_awgn_15db"]
    assert at15 == pytest.approx(recorded, abs=0.03)  # 2000 of the questions, other noise draws
    drowned = evaluate_pipeline(pipeline, test, named_channel("awgn", seed=1), -15.0, seed=1)["all"]
    assert drowned < at15 - 0.15  # the answers come from the tokens


def test_shipped_jtcc_tokens_are_at_least_as_accurate_as_raw_image_vqa(data, jtcc_at_15db) -> None:
    """The paper's headline on the shipped checkpoints: 80 channel values at 15 dB against the clean
    64x64 image, on the same 2 000 test questions."""
    _, tokens = jtcc_at_15db
    raw, _ = load_raw_vqa(SHIPPED / "raw_vqa")
    image = accuracy(lambda b: raw(b["image"], b["question"]), data.test.subset(2000))["all"]
    assert tokens >= image, (tokens, image)
