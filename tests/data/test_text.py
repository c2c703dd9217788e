"""hf_sepnorm.data.text: the WordPiece tokenizer trained on a corpus, and masks that do not depend on global random
state."""

import pytest
import torch
from transformers import AutoTokenizer

from hf_sepnorm.data.text import SeededMaskingCollator, train_wordpiece_tokenizer


def sst2_sentences(data_dir, count: int = 20000) -> list[str]:
    rows = (data_dir / "glue" / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1 : count + 1]
    return [row.split("\t")[0] for row in rows]


@pytest.mark.slow
def test_tokenizer_training_is_deterministic(data_dir, tmp_path):
    """The `tokenizers` trainer alone numbers the "##x" tokens in hash-map order: three trainings on these 20,000
    sentences gave three vocabularies (54 of 1000 ids moved between two of them)."""
    sentences = sst2_sentences(data_dir)
    vocabularies = [train_wordpiece_tokenizer(iter(sentences), vocab_size=1000).get_vocab() for _ in range(3)]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]
    assert len(vocabularies[0]) == 1000

    tokenizer = train_wordpiece_tokenizer(sentences, vocab_size=1000)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.all_special_tokens == tokenizer.all_special_tokens and len(loaded.all_special_ids) == 5
    tokens = loaded.convert_ids_to_tokens(loaded("an unbelievably good film", "a second part")["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and "##" in "".join(tokens)  # word pieces, not special
    assert loaded.decode(loaded("unbelievably good")["input_ids"], skip_special_tokens=True) == "unbelievably good"


def test_masks_depend_on_seed_epoch_and_index_only(data_dir):
    tokenizer = train_wordpiece_tokenizer(sst2_sentences(data_dir, 2000), vocab_size=500)
    ids = tokenizer(sst2_sentences(data_dir, 8), padding="max_length", max_length=24, truncation=True)["input_ids"]
    examples = [{"input_ids": row, "index": index} for index, row in enumerate(ids)]
    collator = SeededMaskingCollator(tokenizer, mlm_probability=0.3, seed=7)

    torch.manual_seed(0)
    batch = collator(examples)
    torch.manual_seed(1)  # another global random state, and the examples in other batches
    again = {key: torch.cat([collator(examples[4:])[key], collator(examples[:4])[key]][::-1]) for key in batch}
    assert all(torch.equal(batch[key], again[key]) for key in ("input_ids", "labels"))
    assert (batch["labels"] != -100).sum() > 0 and "index" not in batch

    special = torch.tensor([tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True) for row in ids])
    assert (batch["labels"][special.bool()] == -100).all()  # [CLS], [SEP] and padding are never masked
    collator.epoch = 1
    assert not torch.equal(collator(examples)["labels"], batch["labels"])
    collator.epoch, collator.seed = 0, 8
    assert not torch.equal(collator(examples)["labels"], batch["labels"])


TWO_NODES_SCRIPT = """
import json, sys, time
from transformers import TrainingArguments
from hf_sepnorm.data.text import train_tokenizer_once

output_dir, rank = sys.argv[1], int(sys.argv[2])
args = TrainingArguments(output_dir=output_dir, use_cpu=True, report_to="none")
assert (args.process_index, args.local_process_index, args.world_size) == (rank, 0, 2)

def texts():
    time.sleep(3)  # global rank 0 is slow to train: another node's first process must wait for its files
    return iter(["the quick brown fox jumps over the lazy dog %d" % i for i in range(200)])

tokenizer = train_tokenizer_once(texts, 100, output_dir, args)
print(json.dumps(sorted(tokenizer.get_vocab().items())))
"""


@pytest.mark.slow
def test_the_tokenizer_is_trained_once_across_nodes(tmp_path):
    """Two nodes of one process each (global ranks 0 and 1, both local rank 0) sharing the output folder: the second
    node's process reads the tokenizer global rank 0 trained and saved, after it is written."""
    import json
    import os
    import subprocess
    import sys

    from training.test_distributed import free_port

    script = tmp_path / "two_nodes.py"
    script.write_text(TWO_NODES_SCRIPT)
    port = str(free_port())
    processes = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "out"), str(rank)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": "0",
                              "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
        for rank in (0, 1)
    ]  # fmt: skip
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, results):
        assert process.returncode == 0, err[-3000:]
    vocabularies = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert vocabularies[0] == vocabularies[1] and len(vocabularies[0]) > 20
