"""SepNormTrainer: the [CLS] BatchNorm statistics re-estimated inside the Trainer's hooks, a setting that cannot work
refused before training, nothing trained lost, this package's model card from `create_model_card`."""

import logging

import pytest
import torch
import yaml
from test_trainer_integration import DigitsDataset, digits_config
from transformers import TrainingArguments

import hf_sepnorm.training.trainer as trainer_module
from hf_sepnorm import SepNormViTMAEForImageClassification
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.recalibration import recalibrate_cls_batchnorm
from hf_sepnorm.training import SepNormTrainer, SepNormTrainingArguments


def make_trainer(tmp_path, arguments_class=SepNormTrainingArguments, **arguments) -> SepNormTrainer:
    args = arguments_class(
        output_dir=str(tmp_path),
        **{"per_device_train_batch_size": 8, "learning_rate": 1e-3, "max_steps": 3, "report_to": [],
           "disable_tqdm": True, "save_strategy": "no", "seed": 3, **arguments},
    )  # fmt: skip
    model = SepNormViTMAEForImageClassification(digits_config())
    return SepNormTrainer(model=model, args=args, train_dataset=DigitsDataset(48), eval_dataset=DigitsDataset(16))


def statistics(trainer) -> list[torch.Tensor]:
    norms = cls_batchnorms(trainer.model)
    return [tensor.clone() for norm in norms for tensor in (norm.running_mean, norm.running_var)]


def assert_same(first: list[torch.Tensor], second: list[torch.Tensor]) -> None:
    assert len(first) == len(second) and all(torch.equal(a, b) for a, b in zip(first, second))


def test_statistics_are_re_estimated_before_evaluation_and_after_training_once_each(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, recalibrate_cls_norm=True)
    calls = []
    original = trainer_module.recalibrate_cls_batchnorm
    monkeypatch.setattr(
        trainer_module, "recalibrate_cls_batchnorm", lambda *a, **k: calls.append(k["max_batches"]) or original(*a, **k)
    )
    initial = statistics(trainer)
    trainer.evaluate()
    assert calls == [50] and not any(torch.equal(a, b) for a, b in zip(initial, statistics(trainer)))
    trainer.evaluate()
    trainer.predict(DigitsDataset(8))
    assert len(calls) == 1  # nothing moved the statistics since

    random_state = torch.get_rng_state()
    trainer.train()
    assert len(calls) == 2  # after training, before the final model is saved
    after_training = statistics(trainer)
    trainer.evaluate()
    assert len(calls) == 2

    # exact averages over training batches drawn with the run's seed, whatever the random state around them
    torch.manual_seed(12345)
    before = torch.get_rng_state()
    assert trainer.recalibrate_cls_batchnorm() == 6  # 48 samples: all 6 batches of 8 (at most 50)
    assert torch.equal(torch.get_rng_state(), before)  # the training's random stream is left as it was
    assert_same(after_training, statistics(trainer))
    assert not torch.equal(random_state, torch.get_rng_state())  # (training did draw from it)


def test_re_estimation_is_the_precise_bn_average_over_the_configured_batches(tmp_path):
    trainer = make_trainer(tmp_path, recalibrate_cls_norm=True, recalibration_batches=2)
    assert trainer.recalibrate_cls_batchnorm() == 2
    estimated = statistics(trainer)
    torch.manual_seed(trainer.args.seed)
    recalibrate_cls_batchnorm(trainer.model, trainer.get_train_dataloader(), max_batches=2)
    assert_same(estimated, statistics(trainer))


@pytest.mark.parametrize("arguments_class", [SepNormTrainingArguments, TrainingArguments])
def test_by_default_only_never_updated_statistics_are_estimated(tmp_path, arguments_class):
    """Re-estimation is off by default (measured to hurt on average, docs/cls_statistics.md); a plain
    TrainingArguments gets SepNormTrainer's defaults. Statistics never updated (mean 0, variance 1: a new or converted
    model) describe nothing, so they are estimated before the first evaluation; those training left are used as
    they are."""
    trainer = make_trainer(tmp_path, arguments_class)
    initial = statistics(trainer)
    assert all(torch.equal(t, torch.zeros_like(t)) or torch.equal(t, torch.ones_like(t)) for t in initial)
    trainer.evaluate()
    estimated = statistics(trainer)
    assert not any(torch.equal(a, b) for a, b in zip(initial, estimated))
    if arguments_class is SepNormTrainingArguments:  # the same PreciseBN estimate as an asked-for re-estimation
        reference = make_trainer(tmp_path, arguments_class, recalibrate_cls_norm=True)
        reference.model.load_state_dict(trainer.model.state_dict())
        for norm in cls_batchnorms(reference.model):
            norm.reset_running_stats()
        reference.recalibrate_cls_batchnorm()
        assert_same(estimated, statistics(reference))
    trainer.evaluate()
    assert_same(estimated, statistics(trainer))  # estimated once
    assert trainer.recalibrate_cls_batchnorm() == 0
    trainer.train()
    after_training = statistics(trainer)
    assert not any(torch.equal(a, b) for a, b in zip(estimated, after_training))  # training's running averages
    trainer.evaluate()
    assert_same(after_training, statistics(trainer))


def test_a_training_log_carries_the_seconds_per_optimizer_step(tmp_path):
    trainer = make_trainer(tmp_path, logging_steps=1)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 3 and all(0 < entry["step_seconds"] < 60 for entry in logged)


def test_training_batches_of_one_are_refused_before_the_first_step_when_re_estimating(tmp_path):
    trainer = make_trainer(tmp_path, recalibrate_cls_norm=True, per_device_train_batch_size=1)
    fixes = r"batches of 1 .*--per_device_train_batch_size 2 or more.*--recalibrate_cls_norm false"
    with pytest.raises(ValueError, match=fixes):
        trainer.train()
    assert trainer.state.global_step == 0
    with pytest.raises(ValueError, match="--per_device_train_batch_size 2 or more"):
        trainer.evaluate()  # the same message, for an evaluation-only run


def test_a_failed_re_estimation_after_training_saves_the_trained_model_first(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, recalibrate_cls_norm=True)

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(trainer_module, "recalibrate_cls_batchnorm", fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        trainer.train()
    reloaded = SepNormViTMAEForImageClassification.from_pretrained(tmp_path)
    assert trainer.state.global_step == 3
    assert all(norm.num_batches_tracked.item() == 3 for norm in cls_batchnorms(reloaded))
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_resume_from_last_needs_a_complete_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        trainer.train(resume_from_checkpoint="last")
    (tmp_path / "checkpoint-2").mkdir()  # a save killed before it wrote anything
    with pytest.raises(ValueError, match="checkpoint-2 is not a complete checkpoint"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))


def test_create_model_card_writes_the_sepnorm_card_with_the_runs_metrics(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.train()
    loss = trainer.evaluate()["eval_loss"]
    trainer.create_model_card(finetuned_from=str(tmp_path), dataset_tags="sepnorm-tests/digits", tags="digits")
    text = (tmp_path / "README.md").read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    assert {"sepnorm", "digits"} <= set(metadata["tags"]) and metadata["pipeline_tag"] == "image-classification"
    assert metadata["datasets"] == ["sepnorm-tests/digits"] and "base_model" not in metadata  # a local folder is no id
    metrics = {m["type"]: m["value"] for e in metadata["model-index"] for r in e["results"] for m in r["metrics"]}
    assert pytest.approx(loss, abs=5e-5) in metrics.values() and not any("runtime" in name for name in metrics)  # rounded
    assert "trust_remote_code=True" in text


def test_the_card_names_the_weights_its_metrics_were_measured_on_and_only_those(tmp_path):
    from huggingface_hub import ModelCard

    from hf_sepnorm.hub.cards import measured_weights, weights_sha256

    trainer = make_trainer(tmp_path)
    trainer.train()
    trainer.save_model()
    trainer.evaluate()
    trainer.create_model_card()
    assert measured_weights(ModelCard.load(tmp_path / "README.md")) == weights_sha256(tmp_path) != {}

    # the statistics re-estimated after the save: the evaluated model is no longer the saved one
    trainer.args.recalibrate_cls_norm = True
    trainer.evaluate()
    trainer.create_model_card()
    card = ModelCard.load(tmp_path / "README.md")
    assert measured_weights(card) == {} and "Measured by the run that wrote this card" in card.text

    # an evaluation-only run of another model in the same folder: the weights there are not what it measured
    other = make_trainer(tmp_path)
    other.evaluate()
    other.create_model_card()
    assert measured_weights(ModelCard.load(tmp_path / "README.md")) == {}


def test_a_nan_image_in_training_is_counted_in_the_logs_and_warned_about_once(tmp_path, caplog):
    """One NaN image in the second batch: in train mode the [CLS] BatchNorm's batch statistics spread it to the clean
    images beside it; the training log counts the batch and one warning names the counter and that effect."""
    trainer = make_trainer(tmp_path, logging_steps=1, max_steps=4, dataloader_drop_last=True)
    trainer.train_dataset.images[8 + 3] = float("nan")  # an image of the second batch
    trainer.get_train_dataloader = lambda: torch.utils.data.DataLoader(  # in order, so that it is the second batch
        trainer.train_dataset, batch_size=8, drop_last=True, collate_fn=trainer.data_collator)

    with caplog.at_level(logging.WARNING, logger="hf_sepnorm"):
        trainer.train()

    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert "nonfinite_cls_batches" not in logged[0]  # a clean batch
    counts = [entry["nonfinite_cls_batches"] for entry in logged[1:]]
    # the NaN batch's gradients made the weights NaN (the Trainer does not skip them): every later batch counts too
    assert counts[0] == 1 and counts == sorted(counts)
    warnings = [record for record in caplog.records if "nonfinite_cls_batches" in record.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "nonfinite_cls_batches=1" in message and "every sample of such a batch, the clean ones too" in message
