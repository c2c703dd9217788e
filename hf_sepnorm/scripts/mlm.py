"""Masked-LM pretraining of SepNormBertForMaskedLM on plain text, with the HF Trainer.

    hf-sepnorm mlm --train_file corpus.txt --output_dir out --do_train --do_eval \
        --config_overrides "hidden_size=128,num_hidden_layers=4,num_attention_heads=4,intermediate_size=512" \
        --cls_norm batch --max_steps 1000

Without --tokenizer_name (or a checkpoint with a tokenizer), a WordPiece tokenizer is trained on the training text
(deterministically) and saved with the model; a resumed run loads it from its checkpoint. Masks are drawn per block
and epoch from a seeded generator, so that a resumed run reaches the weights of an uninterrupted one. Runs under
`accelerate launch` on any number of processes. The model is saved with the [CLS] BatchNorm's running statistics
of training; --recalibrate_cls_norm true re-estimates them on training batches after training (off by default).
"""

import math
from dataclasses import dataclass, field

from datasets import load_dataset
from transformers import AutoTokenizer, set_seed

from hf_sepnorm import SepNormBertForMaskedLM
from hf_sepnorm.data.epochs import EpochCallback
from hf_sepnorm.data.splits import first_rows, with_validation_split
from hf_sepnorm.data.text import SeededMaskingCollator, cls_led_blocks, load_text_corpus, train_tokenizer_once
from hf_sepnorm.errors import InputError
from hf_sepnorm.scripts.ending import train_and_evaluate, write_model_card
from hf_sepnorm.training import (
    SepNormModelArguments,
    SepNormTrainer,
    SepNormTrainingArguments,
    check_checkpoint_kind,
    fit_to_positions,
    load_or_build_model,
    parse_arguments,
    resumed_checkpoint,
    run_main,
)


@dataclass
class DataArguments:
    train_file: list[str] = field(default_factory=list, metadata={"help": "Plain-text training file(s)."})
    validation_file: list[str] = field(default_factory=list, metadata={"help": "Plain-text validation file(s)."})
    encoding: str = field(default="utf-8", metadata={"help": "The text files' encoding (e.g. latin-1, cp1252)."})
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub text dataset instead of files."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Its configuration."})
    text_column: str = field(default="text", metadata={"help": "The Hub dataset's text column."})
    # argparse formats help strings with %: a literal percent sign is written %%
    validation_split_percentage: int = field(
        default=5, metadata={"help": "Held-out %% without a validation file (or the data set's validation split)."}
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "A tokenizer to use instead of training one."})
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary of the tokenizer trained on the text."})
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per block, [CLS] and [SEP] included."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens masked."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training blocks."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation blocks."})

    def __post_init__(self):
        if not self.train_file and self.dataset_name is None:
            raise InputError("Give --train_file FILE [FILE ...] or --dataset_name NAME.")


def load_corpus(data_args: DataArguments):
    if data_args.dataset_name is None:
        return load_text_corpus(data_args.train_file, data_args.validation_file, data_args.validation_split_percentage,
                                data_args.encoding)
    corpus = load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    corpus = corpus.rename_column(data_args.text_column, "text") if data_args.text_column != "text" else corpus
    # a data set without a validation split: its last rows held out, as for --train_file
    return with_validation_split(corpus, data_args.validation_split_percentage, shuffle=False)


def load_tokenizer(model_args: SepNormModelArguments, data_args: DataArguments, corpus, training_args):
    source = data_args.tokenizer_name or model_args.model_name_or_path
    if source is not None:
        return AutoTokenizer.from_pretrained(source, revision=model_args.revision, cache_dir=model_args.cache_dir)
    return train_tokenizer_once(
        lambda: iter(corpus["train"]["text"]),
        data_args.vocab_size,
        training_args.output_dir,
        training_args,
        checkpoint=resumed_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir),
    )


def main(args=None):
    model_args, data_args, training_args = parse_arguments(
        SepNormModelArguments, DataArguments, SepNormTrainingArguments, args=args
    )
    check_checkpoint_kind(SepNormBertForMaskedLM, model_args)
    data_args.max_seq_length = fit_to_positions(data_args.max_seq_length, "--max_seq_length", model_args)
    set_seed(training_args.seed)
    corpus = load_corpus(data_args)
    tokenizer = load_tokenizer(model_args, data_args, corpus, training_args)
    with training_args.main_process_first(desc="tokenizing"):
        blocks = cls_led_blocks(corpus, tokenizer, data_args.max_seq_length)
    train_dataset = first_rows(blocks["train"], data_args.max_train_samples)
    eval_dataset = first_rows(blocks["validation"], data_args.max_eval_samples)

    model = load_or_build_model(
        SepNormBertForMaskedLM,
        model_args,
        new_model_fields={
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "max_position_embeddings": max(512, data_args.max_seq_length),
        },
    )
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    # masks seeded per block and epoch, so that a resumed run masks as the uninterrupted one; the collator needs the
    # blocks' `index` column, which the Trainer would otherwise drop
    collator = SeededMaskingCollator(tokenizer, mlm_probability=data_args.mlm_probability, seed=training_args.seed)
    training_args.remove_unused_columns = False
    trainer = SepNormTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_dataset if training_args.do_eval else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[EpochCallback(collator)],
    )

    def evaluate() -> dict[str, float]:
        metrics = {**trainer.evaluate(), "eval_samples": len(eval_dataset)}
        metrics["eval_perplexity"] = math.exp(min(metrics["eval_loss"], 700))  # exp overflows a float past ~709
        return metrics

    results = train_and_evaluate(trainer, train_dataset=train_dataset, evaluate=evaluate)
    write_model_card(trainer, finetuned_from=model_args.model_name_or_path, dataset_tags=data_args.dataset_name,
                     dataset_args=data_args.dataset_config_name)  # fmt: skip
    return results


if __name__ == "__main__":
    run_main(main)
