"""The conversion shortcuts change how often work is done, never what is converted."""

from __future__ import annotations

import pytest

gguf = pytest.importorskip("gguf")

from kvsl.engine.gguf_convert import conversion_shortcuts  # noqa: E402
from kvsl.engine.models import embedded_gguf_path  # noqa: E402


def test_originals_are_restored_even_after_an_error():
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with pytest.raises(RuntimeError), conversion_shortcuts():
        assert gguf.GGUFReader is not reader
        assert gguf.get_tensor_name_map is not name_map
        raise RuntimeError("boom")
    assert gguf.GGUFReader is reader
    assert gguf.get_tensor_name_map is name_map


def test_tensor_name_map_is_built_once_per_architecture():
    arch = next(iter(gguf.MODEL_ARCH_NAMES))
    with conversion_shortcuts():
        first = gguf.get_tensor_name_map(arch, 4)
        assert gguf.get_tensor_name_map(arch, 4) is first
        assert gguf.get_tensor_name_map(arch, 5) is not first
    # Outside the block every call builds afresh again, as transformers expects.
    assert gguf.get_tensor_name_map(arch, 4) is not gguf.get_tensor_name_map(arch, 4)


@pytest.mark.embedded
def test_shortcut_conversion_equals_transformers_own_bit_for_bit():
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    gguf_path = embedded_gguf_path("smollm2-135m")
    path = str(gguf_path)
    config = AutoConfig.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_config(config)  # only names the tensors to map

    plain = load_gguf_checkpoint(path, return_tensors=True, model_to_load=model)
    with conversion_shortcuts():
        # transformers reads the file three times (config, tokenizer, weights); the
        # shared reader must serve the later reads with the same answers.
        assert load_gguf_checkpoint(path)["config"] == plain["config"]
        fast = load_gguf_checkpoint(path, return_tensors=True, model_to_load=model)
        assert gguf.GGUFReader(path) is gguf.GGUFReader(path)
    assert fast["config"] == plain["config"]
    assert fast["tokenizer"] == plain["tokenizer"]
    assert fast["tensors"].keys() == plain["tensors"].keys()
    for name, tensor in plain["tensors"].items():
        assert fast["tensors"][name].dtype == tensor.dtype, name
        assert fast["tensors"][name].equal(tensor), name
