"""Plain-text corpora for masked-LM pretraining: loading, a WordPiece tokenizer trained on them, [CLS]-led blocks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from datasets import DatasetDict, load_dataset
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast, TrainingArguments

from .splits import with_validation_split

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def check_text_files(files: list[str], argument: str) -> None:
    """Stop at start-up, naming the file, if a text file is missing or holds no text."""
    for path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{argument}: {path} does not exist.")
        with open(path, encoding="utf-8", errors="replace") as handle:
            if not any(line.strip() for line in handle):
                raise ValueError(f"{argument}: {path} holds no text (empty or only blank lines).")


def load_text_corpus(
    train_files: list[str], validation_files: list[str] | None = None, validation_split_percentage: int = 5
) -> DatasetDict:
    """A `DatasetDict` with a `text` column (one line per row, blank lines dropped); without validation files, the
    last `validation_split_percentage` % of the training lines become the validation split."""
    check_text_files(train_files, "--train_file")
    check_text_files(validation_files or [], "--validation_file")
    data_files = {"train": train_files, **({"validation": validation_files} if validation_files else {})}
    corpus = load_dataset("text", data_files=data_files).filter(lambda row: bool(row["text"].strip()))
    return with_validation_split(corpus, validation_split_percentage, shuffle=False)


def train_wordpiece_tokenizer(
    texts: Iterator[str], vocab_size: int = 8000, lowercase: bool = True, model_max_length: int = 512
) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer trained on `texts`, ready for `save_pretrained` / `AutoTokenizer`."""
    backend = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    backend.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()))
    )
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        **SPECIAL_TOKENS,
    )


def cls_led_blocks(corpus: DatasetDict, tokenizer: PreTrainedTokenizerBase, block_length: int) -> DatasetDict:
    """Concatenate the tokenized text and cut it into `[CLS] ... [SEP]` blocks of `block_length` tokens, so that
    position 0 is [CLS] in every example (what SepNorm's [CLS] norm normalizes)."""
    body_length = block_length - 2
    if body_length < 1:
        raise ValueError(f"--max_seq_length {block_length} leaves no room between [CLS] and [SEP].")

    def tokenize(batch):
        return {"ids": tokenizer(batch["text"], add_special_tokens=False)["input_ids"]}

    def into_blocks(batch):
        stream = [token for ids in batch["ids"] for token in ids]
        starts = range(0, len(stream) - body_length + 1, body_length)
        input_ids = [[tokenizer.cls_token_id, *stream[start : start + body_length], tokenizer.sep_token_id] for start in starts]
        return {"input_ids": input_ids, "special_tokens_mask": [[1] + [0] * body_length + [1]] * len(input_ids)}

    tokenized = corpus.map(tokenize, batched=True, remove_columns=corpus["train"].column_names, desc="Tokenizing")
    blocks = tokenized.map(into_blocks, batched=True, batch_size=1000, remove_columns=["ids"], desc="Cutting blocks")
    for split, dataset in blocks.items():
        if len(dataset) == 0:
            raise ValueError(f"The {split} text is shorter than one block of {block_length} tokens.")
    return blocks


def train_tokenizer_once(
    texts: Callable[[], Iterator[str]], vocab_size: int, save_dir: str, training_args: TrainingArguments
) -> PreTrainedTokenizerFast:
    """Train the WordPiece tokenizer in the main process only and load its copy in the others: every process must
    see the same vocabulary (training is not guaranteed to give identical ones)."""
    with training_args.main_process_first(desc="training the tokenizer"):
        if training_args.process_index == 0:
            tokenizer = train_wordpiece_tokenizer(texts(), vocab_size=vocab_size)
            tokenizer.save_pretrained(save_dir)
            return tokenizer
        return AutoTokenizer.from_pretrained(save_dir)
