"""Stand-in files that need a peer's own packages; run with a peer venv's python by bench/peers.py.

``python standins.py tagger OUT``: an nltk averaged-perceptron POS tagger (``taggers/
averaged_perceptron_tagger_eng`` under OUT) trained on a few hand-tagged sentences written here.
The real one is nltk data from GitHub; it only picks among a homograph's pronunciations.
``python standins.py hubert-onnx HF_DIR OUT``: the random HuBERT folder exported to ONNX with
transformers (input ``input_values`` (1, T) at 16 kHz, output the last hidden state as (1, 768, T')).
``python standins.py cpufast-bert OUT``: a random 1-layer, 1024-wide BERT in gpt-sovits-cpufast's
layout (config.json, pytorch_model.bin, tokenizer.json with a 30-entry vocabulary). English text
never runs it (its BERT features are zeros), but the engine loads one at start.
``python standins.py lite-sv OUT``: random weights of gsv-tts-lite's speaker-verification net
(ERes2NetV2, baseWidth 24, scale 4, expansion 4, its own class) saved as OUT. gsv-tts-lite runs it on
every new reference; a v2 SoVITS model ignores its embedding.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

SENTENCES = [
    [("we", "PRP"), ("are", "VBP"), ("going", "VBG"), ("to", "TO"), ("play", "VB"), ("something", "NN"),
     ("new", "JJ"), ("tonight", "NN"), (".", ".")],
    [("thanks", "NNS"), ("for", "IN"), ("the", "DT"), ("follow", "NN"), (",", ","), ("everyone", "NN")],
    [("i", "PRP"), ("hope", "VBP"), ("you", "PRP"), ("enjoy", "VBP"), ("it", "PRP"), ("and", "CC"),
     ("read", "VBD"), ("the", "DT"), ("record", "NN"), (".", ".")],
    [("please", "UH"), ("record", "VB"), ("your", "PRP$"), ("message", "NN"), ("after", "IN"), ("the", "DT"),
     ("tone", "NN"), (".", ".")],
]


def tagger(out: Path) -> None:
    from nltk.tag.perceptron import PerceptronTagger

    t = PerceptronTagger(load=False)
    t.train(SENTENCES * 4, nr_iter=3)
    loc = out / "taggers" / "averaged_perceptron_tagger_eng"
    loc.mkdir(parents=True, exist_ok=True)
    # written here: nltk >= 3.10's save_to_json refuses folders outside its own data roots
    for name, obj in zip(t.param_files("eng"), t.encode_json_obj()):
        (loc / name).write_text(json.dumps(obj))


def hubert_onnx(hf_dir: Path, out: Path) -> None:
    import torch
    from transformers import HubertModel

    model = HubertModel.from_pretrained(str(hf_dir), torch_dtype=torch.float32).eval()

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_values: torch.Tensor) -> torch.Tensor:
            return self.m(input_values).last_hidden_state.transpose(1, 2)

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Wrap(), (torch.zeros(1, 32000),), str(out), input_names=["input_values"],
                      output_names=["ssl_content"], dynamic_axes={"input_values": {1: "t"}, "ssl_content": {2: "f"}},
                      opset_version=17, dynamo=False)


def cpufast_bert(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing

    sys.path.insert(0, str(Path(__import__("GPT_SoVITS").__file__).parent))
    from text.chinese_bert import load_model  # the peer's own loader: the file must load cleanly with it

    config = {"vocab_size": 30, "hidden_size": 1024, "num_hidden_layers": 1, "num_attention_heads": 16,
              "intermediate_size": 4096, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0, "max_position_embeddings": 512, "type_vocab_size": 2,
              "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0, "model_type": "bert",
              "architectures": ["BertForMaskedLM"], "output_hidden_states": True}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxy")
    vocab = {t: i for i, t in enumerate(words)}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(str(out / "tokenizer.json"))
    from text.chinese_bert import BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(SimpleNamespace(**config))
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    load_model(str(out))


def lite_sv(out: Path) -> None:
    import torch
    from gsv_tts.GPT_SoVITS.SV.ERes2NetV2 import ERes2NetV2

    torch.manual_seed(0)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ERes2NetV2(baseWidth=24, scale=4, expansion=4).state_dict(), out)


if __name__ == "__main__":
    what, *paths = sys.argv[1:]
    makers = {"tagger": tagger, "hubert-onnx": hubert_onnx, "cpufast-bert": cpufast_bert, "lite-sv": lite_sv}
    makers[what](*map(Path, paths))
