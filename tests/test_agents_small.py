"""The small default agents: scene tokens, the frozen receiver, the token pipeline, packed data,
training that learns, checkpoints that refuse what does not fit, and the experiment end to end."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch

from semcom.agents.checkpoint import (
    CheckpointError,
    check_vocab,
    load_pipeline,
    load_raw_vqa,
    load_receiver,
    make_link,
    save_pipeline,
    save_raw_vqa,
    save_receiver,
)
from semcom.agents.small import (
    LABEL_CELL,
    PARSE_FIELDS,
    SCENE_FIELDS,
    ParseHead,
    RawVQA,
    SceneParser,
    SensorAgent,
    SmallConfig,
    TaskAgent,
    TokenPipeline,
    grid_labels,
)
from semcom.agents.train import (
    AgentTrainConfig,
    VQATensors,
    accuracy,
    alignment_loss,
    evaluate_pipeline,
    match_slots,
    parse_accuracy,
    pretrain_receiver,
    pretrain_vision,
    receiver_logits,
    train_token_pipeline,
)
from semcom.channels import AWGNChannel
from semcom.data import collate_vqa, make_vqa_dataset
from semcom.data.questions import _bin


@pytest.fixture(scope="module")
def splits():
    return make_vqa_dataset(n_scenes=60, questions_per_scene=5, seed=3, image_size=64)


@pytest.fixture(scope="module")
def cfg(splits) -> SmallConfig:
    train = splits[0]
    return SmallConfig(vocab=list(train.vocab.itos), answers=list(train.answers.itos), d=32, heads=2, ff=64,
                       rx_layers=2, tx_layers=1, k_tokens=3)


def test_scene_tokenizer_reads_every_object_left_to_right(splits, cfg) -> None:
    train = splits[0]
    rx = TaskAgent(cfg)
    scenes = train.scenes[:8]
    ids = collate_vqa([{"s_ids": train._scene_ids[i]} for i in range(8)])["s_ids"]
    fields, mask = rx.scene_tokenizer(ids)
    assert fields.shape[2] == len(SCENE_FIELDS)
    for b, scene in enumerate(scenes):
        objs = sorted(scene.objects, key=lambda o: o.x)
        assert int(mask[b].sum()) == len(objs)
        for o, row in zip(objs, fields[b], strict=False):
            words = [train.vocab.itos[int(i)] for i in row]
            assert words[0] == o.size and words[1] == o.color and words[3] == o.shape
            assert words[2] == "<pad>"  # no material in generated scenes
            assert words[4] == str(_bin(o.x)) and words[5] == str(_bin(o.y))


def test_sum_object_embedding_is_the_attribute_words_plus_positions(splits, cfg) -> None:
    """The object token shares the question's word embeddings, so "red" matches a red object."""
    train = splits[0]
    rx = TaskAgent(cfg)
    ids = train._scene_ids[0].unsqueeze(0)
    tokens, mask = rx.embed_scene(ids)
    obj = sorted(train.scenes[0].objects, key=lambda o: o.x)[0]
    stoi = {w: i for i, w in enumerate(cfg.vocab)}
    expected = sum(rx.word.weight[stoi[w]] for w in (obj.size, obj.color, obj.shape))
    positions = [int(_bin(obj.x)), int(_bin(obj.y))]
    for f, value in enumerate(positions):
        expected = expected + rx.position_fields.weight[f * 10 + value]
    row = int(rx.scene_tokenizer(ids)[0][0, 0, 6].item())  # the row word of the first object
    expected = expected + rx.position_fields.weight[2 * 10 + int(cfg.vocab[row])]
    torch.testing.assert_close(tokens[0, 0], expected)
    with pytest.raises(ValueError, match="object_embedding"):
        TaskAgent(SmallConfig(vocab=cfg.vocab, answers=cfg.answers, d=32, object_embedding="mean"))


def test_grid_labels_put_every_object_in_its_own_cell(splits) -> None:
    scenes = splits[0].scenes
    labels = grid_labels(scenes, 64, 16)  # 16 patches x 4 cells of 8x8 pixels
    assert labels.shape == (len(scenes), 16, 4, 4)
    for scene, lab in zip(scenes, labels, strict=True):
        assert int((lab[..., 0] == 1).sum()) == len(scene.objects)  # no two centres share a cell
        for o in scene.objects:
            col, row = int(o.x * 64) // LABEL_CELL, int(o.y * 64) // LABEL_CELL
            patch, cell = (row // 2) * 4 + col // 2, (row % 2) * 2 + col % 2
            assert lab[patch, cell].tolist() == [1, PARSE_FIELDS["size"].index(o.size),
                                                 PARSE_FIELDS["color"].index(o.color),
                                                 PARSE_FIELDS["shape"].index(o.shape)]
        assert (lab[..., 1:][lab[..., 0] == 0] == -100).all()


def test_vision_pretraining_learns_to_parse_scenes(splits, cfg) -> None:
    train, val = splits[0], splits[1]
    torch.manual_seed(0)
    parser = SceneParser(cfg)
    labels = grid_labels(train.scenes, 64, cfg.patch)
    val_labels = grid_labels(val.scenes, 64, cfg.patch)
    before = parse_accuracy(parser, val.images, val_labels)
    hist = pretrain_vision(parser, train.images, labels, AgentTrainConfig(epochs=40, batch_size=16, lr=3e-3),
                           progress=False)
    after = parse_accuracy(parser, train.images, labels)
    assert hist[-1]["loss"] < 0.3 * hist[0]["loss"]
    assert after["object_f1"] > before["object_f1"] + 0.25 and after["color_acc"] > 0.6, (before, after)
    with pytest.raises(ValueError, match="multiple of"):
        SceneParser(SmallConfig(vocab=cfg.vocab, answers=cfg.answers, d=32, patch=4))


class _OracleParser(torch.nn.Module):
    """A parser whose object log-odds are given per image (the image's first pixel is its index);
    attribute logits all zero."""

    def __init__(self, log_odds: torch.Tensor, cells: int) -> None:
        super().__init__()
        self.log_odds, self.cells = log_odds, cells
        self.head = ParseHead  # proposals / object_log_odds are static methods

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = (images[:, 0, 0, 0] * 255).round().long()
        lo = self.log_odds[idx].view(idx.shape[0], -1, self.cells)
        return {"object": torch.stack([torch.zeros_like(lo), lo], dim=-1)} | {
            f: lo.new_zeros(*lo.shape, len(words)) for f, words in PARSE_FIELDS.items()}


def test_proposal_recall_counts_the_scenes_whose_objects_are_all_proposed(splits, cfg) -> None:
    scenes = splits[0].scenes[:60]
    labels = grid_labels(scenes, 64, cfg.patch)
    is_object = (labels[..., 0] == 1).flatten(1).float()  # (S, 64)
    images = torch.zeros(len(scenes), 3, 64, 64, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(len(scenes), dtype=torch.uint8)
    n = is_object.sum(dim=1).long()
    cells = labels.shape[2]
    def recall(log_odds: torch.Tensor) -> dict[int, float]:
        out = parse_accuracy(_OracleParser(log_odds, cells), images, labels, k=5)
        return {int(name.split("_")[1]): v for name, v in out.items() if name.startswith("recall_")}

    assert "recall_3_objects" not in parse_accuracy(_OracleParser(is_object, cells), images, labels)
    perfect = recall(is_object * 5 - 1)
    assert set(perfect) == set(n.unique().tolist()) and all(v == 1.0 for v in perfect.values())
    # Hide one object of every 4-object scene below the empty cells: those scenes lose full recall;
    # with 6 objects and K = 5, one object missing is still full recall.
    hidden = is_object * 5 - 1
    for s in range(len(scenes)):
        if n[s] in (4, 6):
            hidden[s, is_object[s].nonzero()[0]] = -9.0
    hidden_recall = recall(hidden)
    assert hidden_recall[4] == 0.0 and hidden_recall.get(6, 1.0) == 1.0 and hidden_recall[3] == 1.0, \
        hidden_recall


def test_sensor_slots_start_from_the_most_object_like_cells(cfg) -> None:
    """With proposals, slot k starts from the k-th most object-like label cell of the parse head: its
    patch feature + the embedding of the cell's place + its objectness + the map of that cell's (not its
    patch's other cells') attribute probabilities."""
    torch.manual_seed(0)
    sensor = SensorAgent(cfg)
    head = sensor.parse_head
    per_cell = sum(head.sizes.values())
    with torch.no_grad():  # objectness of (patch n, cell 1) = feature 0 of patch n; every other cell: 0
        head.linear.weight.zero_()
        head.linear.bias.zero_()
        head.linear.weight[1 * per_cell + 1, 0] = 1.0
        # Cell 1's first colour logit = feature 1; cell 0's = feature 2 (must not leak into the slot).
        first_color = head.sizes["object"] + head.sizes["size"]
        head.linear.weight[1 * per_cell + first_color, 1] = 1.0
        head.linear.weight[0 * per_cell + first_color, 2] = 1.0
    patches = torch.randn(2, 16, cfg.d)
    patches[..., 0] = torch.tensor([[5.0, -1, 9, 3] + [-2.0] * 12,
                                    [1.0 - 0.05 * i for i in range(15)] + [7.0]])
    with torch.no_grad():
        slots = sensor.slots(patches)
    assert slots.shape == (2, cfg.k_tokens, cfg.d)
    k = cfg.k_tokens
    assert k == 3
    top = [[2, 0, 3], [15, 0, 1]]  # patches in order of their cell-1 objectness (other cells: 0)
    for b in range(2):
        score = patches[b, top[b], 0]
        cells = [4 * p + 1 for p in top[b]]  # 4 label cells per patch, cell 1 of each
        color_logits = torch.zeros(k, head.sizes["color"])
        color_logits[:, 0] = patches[b, top[b], 1]
        uniform = {f: torch.full((k, head.sizes[f]), 1 / head.sizes[f]) for f in ("size", "shape")}
        attrs = torch.cat([uniform["size"], color_logits.softmax(-1), uniform["shape"]], dim=-1)
        want = (patches[b, top[b]] + sensor.cell_pos[cells] + torch.sigmoid(score).unsqueeze(-1)
                * sensor.objectness_scale + sensor.queries + sensor.attr_proj(attrs))
        torch.testing.assert_close(slots[b], want)
    with pytest.raises(ValueError, match="sensor_slots"):
        SensorAgent(dataclasses.replace(cfg, sensor_slots="crystal-ball"))
    queries = SensorAgent(dataclasses.replace(cfg, sensor_slots="queries"))
    torch.testing.assert_close(queries.slots(patches), queries.queries.expand(2, -1, -1))


def test_sensor_takes_and_freezes_the_pretrained_parser(cfg) -> None:
    torch.manual_seed(0)
    parser = SceneParser(cfg)
    sensor = SensorAgent(cfg)
    sensor.pretrained_parser(parser)
    sensor.freeze_pretrained()
    for mine, theirs in ((sensor.vision, parser.vision), (sensor.parse_head, parser.head)):
        for (name, p), q in zip(mine.named_parameters(), theirs.parameters(), strict=True):
            assert torch.equal(p, q) and not p.requires_grad, name
    trainable = {n.split(".")[0] for n, p in sensor.named_parameters() if p.requires_grad}
    assert trainable == {"word", "text_pos", "queries", "cell_pos", "objectness_scale", "attr_proj",
                         "encoder", "norm", "out"}


def test_alignment_loss_is_a_set_loss_on_the_receivers_own_object_tokens(splits, cfg) -> None:
    rx = TaskAgent(cfg)
    b = VQATensors.from_dataset(splits[0]).batch(torch.arange(12))
    target, mask = rx.embed_scene(b["scene"])  # (B, O, d): one token per object, O = most objects
    assert (~mask).any()  # some scenes have fewer objects than others
    g = torch.Generator().manual_seed(0)
    shuffled = target.gather(1, torch.argsort(torch.rand(mask.shape, generator=g), dim=1).unsqueeze(-1)
                             .expand_as(target))
    with torch.no_grad():
        assert alignment_loss(target, rx, b["scene"]).item() == pytest.approx(0.0, abs=1e-10)
        # Any order of the objects is as good (the receiver reads a set).
        assert alignment_loss(shuffled, rx, b["scene"]).item() == pytest.approx(0.0, abs=1e-10)
        # A uniform offset costs at most its square (the identity match), and more than nothing.
        assert 0.0 < alignment_loss(target + 1.0, rx, b["scene"]).item() <= 1.0 + 1e-6
        # Slots past a scene's objects must send the zero "no object" token.
        spoiled = target.masked_fill(~mask.unsqueeze(-1), 3.0)
        assert alignment_loss(spoiled, rx, b["scene"]).item() == pytest.approx(
            9.0 * float((~mask).sum()) / mask.numel(), rel=1e-5)
    # Fewer slots than objects: the match picks the objects it can send; K of the scene's own tokens
    # cost nothing, whichever K.
    three = shuffled[:, :3]
    with torch.no_grad():
        # The padding is part of the target set: with fewer slots than targets, a "no object" token
        # matched to a padded target costs nothing either (scenes with >= 3 objects and a padded last
        # slot are in this batch), while one token off the scene's own set costs.
        n_objects = mask.sum(1)
        assert ((n_objects >= 3) & ~mask[:, -1]).any()
        assert alignment_loss(target[:, -3:].flip(1), rx, b["scene"]).item() == pytest.approx(0.0, abs=1e-10)
        assert alignment_loss(target[:, -3:].flip(1) + 0.1, rx, b["scene"]).item() > 1e-3
        assert alignment_loss(three, rx, b["scene"]).item() == pytest.approx(0.0, abs=1e-10)
    tokens = (target + 0.5).detach().requires_grad_(True)
    alignment_loss(tokens, rx, b["scene"]).backward()
    assert tokens.grad.abs().sum() > 0 and all(p.grad is None for p in rx.parameters())


def test_match_slots_finds_the_cheapest_assignment() -> None:
    # Slot 0 alone would take target 0; together, slot 1 needs it more (greedy costs 10, the best 2.5).
    cost = torch.tensor([[[1.0, 2.0, 9.0], [0.5, 9.0, 9.0]],
                         [[0.0, 9.0, 9.0], [9.0, 9.0, 0.0]]])
    assert match_slots(cost).tolist() == [[1, 0], [0, 2]]
    # Against brute force on random problems.
    import itertools

    g = torch.Generator().manual_seed(1)
    c = torch.rand(20, 3, 5, generator=g)
    got = c.gather(2, match_slots(c).unsqueeze(-1)).sum(dim=(1, 2))
    best = torch.stack([min(sum(ci[k, p[k]] for k in range(3)) for p in itertools.permutations(range(5), 3))
                        for ci in c])
    torch.testing.assert_close(got, best)


def test_receiver_ignores_padding_and_rejects_long_inputs(splits, cfg) -> None:
    torch.manual_seed(0)
    rx = TaskAgent(cfg).eval()
    b = VQATensors.from_dataset(splits[0]).batch(torch.arange(6))
    logits = receiver_logits(rx, b, "scene")
    assert logits.shape == (6, cfg.n_answers)
    padded = dict(b, question=torch.cat([b["question"], torch.zeros(6, 5, dtype=torch.long)], dim=1),
                  scene=torch.cat([b["scene"], torch.zeros(6, 7, dtype=torch.long)], dim=1))
    torch.testing.assert_close(receiver_logits(rx, padded, "scene"), logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="longer than"):
        rx(torch.zeros(1, cfg.max_prefix + 1, cfg.d), None, b["question"][:1])
    with pytest.raises(ValueError, match="prefix"):
        receiver_logits(rx, b, "image")


def test_packed_batches_equal_the_collated_items(splits) -> None:
    train = splits[0]
    packed = VQATensors.from_dataset(train)
    generic = VQATensors.from_dataset(_AsList(train, 20))  # the per-item path
    idx = torch.tensor([3, 0, 17, 9])
    ref = collate_vqa([train[int(i)] for i in idx])
    for data in (packed, generic):
        b = data.batch(idx)
        for ours, theirs in (("question", "question_ids"), ("vague", "vague_ids"), ("scene", "scene_ids"),
                             ("summary", "summary_ids")):
            assert torch.equal(b[ours], ref[theirs]), ours
        assert torch.equal(b["answer"], ref["answer"]) and torch.equal(b["family"], ref["family"])
        torch.testing.assert_close(b["image"], ref["image"], rtol=0, atol=0.5 / 255)
    assert len(packed.subset(7)) == 7
    both = VQATensors.concat([generic, packed])
    assert len(both) == len(generic) + len(packed)
    second = both.batch(idx + len(generic))
    for key in ("question", "scene", "answer"):
        assert torch.equal(second[key][:, :packed.batch(idx)[key].shape[-1]] if second[key].dim() > 1
                           else second[key], packed.batch(idx)[key])
    torch.testing.assert_close(second["image"], packed.batch(idx)["image"])


class _AsList:
    """A plain sequence of items (no generated-dataset internals), like a CLEVR/GQA loader."""

    families = ()

    def __init__(self, ds, n: int) -> None:
        self.items = [ds[i] for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def test_pipeline_keeps_the_receiver_frozen_and_trains_sensor_and_link(cfg, splits) -> None:
    torch.manual_seed(0)
    b = VQATensors.from_dataset(splits[0]).batch(torch.arange(8))
    for grad_mode in ("exact", "straight_through"):
        rx = TaskAgent(cfg)
        before = {k: v.clone() for k, v in rx.state_dict().items()}
        pipe = TokenPipeline(SensorAgent(cfg), make_link("jtcc", cfg.d, 8, 32, grad_mode), rx)
        pipe.train()
        assert not pipe.receiver.training
        logits = pipe(b["image"], b["vague"], b["question"], channel=AWGNChannel(10.0, seed=0))
        torch.nn.functional.cross_entropy(logits, b["answer"]).backward()
        assert all(p.grad is None for p in pipe.receiver.parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pipe.link.parameters())
        assert pipe.sensor.queries.grad.abs().sum() > 0
        opt = torch.optim.SGD([p for p in pipe.parameters() if p.requires_grad], lr=0.1)
        opt.step()
        assert all(torch.equal(v, rx.state_dict()[k]) for k, v in before.items())


def test_receiver_pretraining_learns(splits, cfg) -> None:
    """A small receiver on 210 questions: far above the majority answer on what it was trained on."""
    train = VQATensors.from_dataset(splits[0])
    torch.manual_seed(0)
    rx = TaskAgent(cfg)
    hist = pretrain_receiver(rx, train, AgentTrainConfig(epochs=25, batch_size=16, lr=3e-3, seed=0),
                             progress=False)
    acc = accuracy(lambda b: receiver_logits(rx, b, "scene"), train)
    majority = float(torch.bincount(train.answer).max()) / len(train)
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    assert acc["all"] > 2 * majority
    assert acc["query_color"] >= 0.7  # chance: 1 in 8 colours


def test_token_pipeline_learns_through_the_channel(splits, cfg) -> None:
    """Transmitter + JTCC through a frozen receiver fit 24 questions; the answers then come from the
    tokens: at -20 dB (tokens drowned) accuracy falls back towards the prior. (Over AWGN the two gradient
    modes coincide, dy/dz = I; tests/test_agents_jtcc.py compares them where they differ.)"""
    everything = VQATensors.from_dataset(splits[0])
    data = everything.subset(24)
    torch.manual_seed(0)
    rx = TaskAgent(cfg)
    pretrain_receiver(rx, everything, AgentTrainConfig(epochs=12, batch_size=32, lr=3e-3), progress=False)
    pipe = TokenPipeline(SensorAgent(cfg), make_link("jtcc", cfg.d, 8, 64), rx)
    ch = AWGNChannel(20.0, seed=0)
    before = evaluate_pipeline(pipe, data, ch, 20.0)["all"]
    hist = train_token_pipeline(pipe, data, ch, AgentTrainConfig(epochs=100, batch_size=24, lr=5e-3,
                                                                 snr_db=(15.0, 25.0)), progress=False)
    assert hist[-1]["loss"] < 0.75 * hist[0]["loss"]
    high = evaluate_pipeline(pipe, data, ch, 20.0)["all"]
    low = evaluate_pipeline(pipe, data, ch, -20.0)["all"]
    # An untrained sensor already scores the receiver's answer prior (0.6-0.7 on these 24 questions).
    assert high >= 0.75 and high > before and high > low + 0.15, (before, high, low)


def test_checkpoints_round_trip_and_refuse_the_wrong_receiver(tmp_path, cfg, splits) -> None:
    torch.manual_seed(0)
    b = VQATensors.from_dataset(splits[0]).batch(torch.arange(5))
    rx = TaskAgent(cfg)
    save_receiver(tmp_path / "receiver", rx, {"note": "t"})
    rx2, doc = load_receiver(tmp_path / "receiver")
    assert doc["meta"] == {"note": "t"} and not any(p.requires_grad for p in rx2.parameters())
    torch.testing.assert_close(receiver_logits(rx2, b, "scene"), receiver_logits(rx.eval(), b, "scene"))

    pipe = TokenPipeline(SensorAgent(cfg), make_link("jtcc", cfg.d, 8, 32), rx).eval()
    save_pipeline(tmp_path / "tokens", pipe, tmp_path / "receiver")
    again, _ = load_pipeline(tmp_path / "tokens")
    torch.testing.assert_close(again(b["image"], b["vague"], b["question"]),
                               pipe(b["image"], b["vague"], b["question"]))
    raw_pipe = TokenPipeline(SensorAgent(cfg), make_link("raw", cfg.d), rx)
    save_pipeline(tmp_path / "raw", raw_pipe, tmp_path / "receiver", store_dtype=torch.float16)
    assert load_pipeline(tmp_path / "raw")[0].link.m == cfg.d

    # Another receiver (retrained, or just another seed): the tokens mean nothing to it.
    save_receiver(tmp_path / "other", TaskAgent(cfg))
    with pytest.raises(CheckpointError, match="another receiver"):
        load_pipeline(tmp_path / "tokens", tmp_path / "other")
    with pytest.raises(CheckpointError, match="not a token-pipeline checkpoint"):
        load_pipeline(tmp_path / "receiver")
    with pytest.raises(CheckpointError, match="not a receiver"):
        load_receiver(tmp_path / "tokens")
    doc = json.loads((tmp_path / "tokens.json").read_text())
    doc["config"]["link"]["kind"] = "carrier-pigeon"
    (tmp_path / "tokens.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_pipeline(tmp_path / "tokens")
    (tmp_path / "receiver.pt").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError):
        load_receiver(tmp_path / "receiver")

    raw = RawVQA(cfg).eval()
    save_raw_vqa(tmp_path / "raw_vqa", raw)
    torch.testing.assert_close(load_raw_vqa(tmp_path / "raw_vqa")[0](b["image"], b["question"]),
                               raw(b["image"], b["question"]))


def test_vocabulary_mismatch_is_a_clear_error(cfg) -> None:
    check_vocab(cfg, cfg.vocab, cfg.answers)
    with pytest.raises(ValueError, match="word vocabulary"):
        check_vocab(cfg, cfg.vocab[:-1], cfg.answers)
    with pytest.raises(ValueError, match="answer vocabulary"):
        check_vocab(cfg, cfg.vocab, list(reversed(cfg.answers)))


def test_experiment_end_to_end_tiny(tmp_path) -> None:
    """All four stages and the evaluation on a tiny run: checkpoints, CSV, PNG, summary; a rerun loads
    instead of training."""
    from semcom.agents.experiment import AgentsExperiment, evaluate, make_data, train_all
    from semcom.checkpoint import train_state_path

    one = AgentTrainConfig(epochs=1, batch_size=32)
    exp = AgentsExperiment(n_scenes=20, questions_per_scene=3, d=32, n_val=10, pretrain_scenes=10,
                           vision=one, receiver=one, text=one, raw_vqa=one, jtcc_m=8, tx_layers=1,
                           tokens=dataclasses.replace(one, align_epochs=1),
                           jtcc=dataclasses.replace(one, link_epochs=1))
    data = make_data(exp, progress=False)
    info = train_all(exp, tmp_path / "ck", command="test", progress=False, data=data)
    assert set(info) == {"vision", "receiver", "text", "tokens", "jtcc", "raw_vqa"}
    assert not train_state_path(tmp_path / "ck" / "receiver").exists()  # resume state removed when done
    # The transmitter's warm-ups are in its history, and in its training time.
    assert [h.get("phase", "task") for h in info["tokens"]["history"]] == ["align", "task"]
    assert [h.get("phase", "task") for h in info["jtcc"]["history"]] == ["link", "task"]
    tokens_history = info["tokens"]["history"]
    assert info["tokens"]["train_seconds"] == pytest.approx(sum(h["seconds"] for h in tokens_history))
    assert train_all(exp, tmp_path / "ck", progress=False, data=data) == {}
    rows = evaluate(exp, tmp_path / "ck", tmp_path / "out", snrs=(10.0,), channels=("awgn",), data=data,
                    progress=False)
    methods = {r["method"] for r in rows}
    assert methods == {"receiver_ground_truth", "natural_language_summary", "raw_image_vqa", "tokens_jtcc",
                       "tokens_raw", "deepjscc_raw_vqa", "receiver_first_k_objects"}
    first_k = sorted(r["k_tokens"] for r in rows if r["method"] == "receiver_first_k_objects")
    assert first_k == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "out" / "accuracy_vs_tokens.png").is_file()
    values = {r["method"]: r["channel_values"] for r in rows}
    assert values["tokens_jtcc"] == 5 * 8 and values["tokens_raw"] == 5 * 32
    assert values["deepjscc_raw_vqa"] == 2 * 64 * 64 * 3 / 6  # k = n/6 complex uses, 2 reals each
    jscc_row = next(r for r in rows if r["method"] == "deepjscc_raw_vqa")
    assert 15 < jscc_row["image_psnr_db"] < 45  # the shipped codec does reconstruct scenes
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["acceptance"]["jtcc_compression_vs_raw_tokens"] == 4
    assert (tmp_path / "out" / "results.png").stat().st_size > 1000
    # Every accuracy counts whole questions of the test split, and the overall one is the per-family
    # accuracies weighted by how many test questions each family has (the rows' accounting is one count).
    family_names = data.test.families
    family_sizes = torch.bincount(data.test.family, minlength=len(family_names)).tolist()
    n_test = sum(family_sizes)
    for r in rows:
        correct = float(r["accuracy"]) * n_test
        assert correct == pytest.approx(round(correct), abs=1e-6), r["method"]
        weighted = sum(size * float(r[f"acc_{name}"])
                       for name, size in zip(family_names, family_sizes, strict=True) if size) / n_test
        assert weighted == pytest.approx(float(r["accuracy"]), abs=1e-9), r["method"]


def test_pretraining_scenes_feed_both_pretraining_stages_and_only_them(tmp_path, monkeypatch) -> None:
    """The vision backbone parses the training images and the pre-training scenes' images; the receiver
    reads both sets' questions; the compared task stages (tokens, JTCC, raw VQA) never see them."""
    from semcom.agents import experiment as ex

    one = AgentTrainConfig(epochs=1, batch_size=32)
    exp = ex.AgentsExperiment(n_scenes=20, questions_per_scene=3, d=32, n_val=10, pretrain_scenes=7,
                              vision=one, receiver=one, raw_vqa=one, tx_layers=1,
                              tokens=dataclasses.replace(one, align_epochs=0))
    data = ex.make_data(exp, progress=False)
    assert data.pretrain is not None and data.pretrain_labels is not None
    assert data.pretrain.images.shape[0] == data.pretrain_labels.shape[0] == 7
    seen: dict[str, int] = {}
    for name in ("pretrain_vision", "pretrain_receiver", "train_token_pipeline", "train_raw_vqa"):
        real = getattr(ex, name)

        def spy(model, images_or_data, *a, _real=real, _name=name, **kw):
            seen[_name] = int(images_or_data.shape[0]) if torch.is_tensor(images_or_data) else len(
                images_or_data)
            return _real(model, images_or_data, *a, **kw)
        monkeypatch.setattr(ex, name, spy)
    ex.train_all(exp, tmp_path / "ck", stages=("vision", "receiver", "tokens", "raw_vqa"), progress=False,
                 data=data)
    n_train_images = data.train.images.shape[0]
    assert seen["pretrain_vision"] == n_train_images + 7
    assert seen["pretrain_receiver"] == len(data.train) + len(data.pretrain)
    assert seen["train_token_pipeline"] == seen["train_raw_vqa"] == len(data.train)
    # Without the pre-training scenes the pre-training stages say what is missing.
    bare = ex.make_data(exp, progress=False, pretrain=False)
    with pytest.raises(ValueError, match="pre-training scenes"):
        ex.train_stage(exp, "vision", bare, tmp_path / "ck2", progress=False)


def test_experiment_reads_the_old_name_of_the_pretraining_scenes() -> None:
    from semcom.agents.experiment import AgentsExperiment

    old = AgentsExperiment(pretrain_scenes=123).to_dict()
    old["receiver_extra_scenes"] = old.pop("pretrain_scenes")
    assert AgentsExperiment.from_dict(old).pretrain_scenes == 123


def test_train_seed_retrains_the_same_data_differently_and_reproducibly(tmp_path) -> None:
    """`semcom train --train-seed S` keeps the data (--seed) and changes every training draw: the same
    stage seed gives the same weights, another one other weights; the default is --seed."""
    from semcom.agents.checkpoint import load_receiver
    from semcom.agents.commands import _experiment, _experiment_args
    from semcom.agents.experiment import AgentsExperiment, checkpoint_path, make_data, train_stage

    p = argparse.ArgumentParser()
    _experiment_args(p)
    default = _experiment(p.parse_args(["--seed", "4"]))
    assert default.seed == 4 and default.receiver.seed == 4
    retrain = _experiment(p.parse_args(["--seed", "4", "--train-seed", "9"]))
    assert retrain.seed == 4 and {getattr(retrain, s).seed for s in ("vision", "receiver", "jtcc")} == {9}

    one = AgentTrainConfig(epochs=1, batch_size=32)
    exp = AgentsExperiment(n_scenes=20, questions_per_scene=3, d=32, n_val=10, pretrain_scenes=0,
                           receiver=one)
    data = make_data(exp, progress=False)

    def receiver_weights(stage_seed: int, folder: str) -> dict:
        run = dataclasses.replace(exp, receiver=dataclasses.replace(one, seed=stage_seed))
        train_stage(run, "receiver", data, tmp_path / folder, progress=False)
        return load_receiver(checkpoint_path(tmp_path / folder, "receiver"))[0].state_dict()

    first, again, other = receiver_weights(1, "a"), receiver_weights(1, "b"), receiver_weights(2, "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)
